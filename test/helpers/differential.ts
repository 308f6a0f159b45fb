// The loop both DER differential fuzzers share (CRLs: crl-fuzz.ts, OCSP
// requests: ocsp-fuzz.ts): a seeded case is generated, maybe edited in its
// tree, encoded, maybe edited in its bytes, and read by us and by OpenSSL.
// What we accept OpenSSL must accept with the same reading; what only
// OpenSSL accepts is counted as our strictness, not a finding.
import { caseSeed, rng, type Rng } from './csr-fuzz.js';
import { scratchDir } from './cli.js';

export interface Reading {
  accepted: boolean;
}

export interface Finding {
  seed: number;
  steps: string[];
  problem: string;
  der: string;
}

export interface DifferentialResult {
  findings: Finding[];
  accepted: number;
  refused: number;
  /** Refused by us, accepted by OpenSSL. */
  stricter: number;
}

/** One bit flipped, one byte inserted or one deleted, at a random place. */
export function byteEdit(r: Rng, b: Buffer): [string, Buffer] {
  const at = r.int(b.length);
  switch (r.int(3)) {
    case 0: {
      const c = Buffer.from(b);
      c[at] = c[at]! ^ (1 << r.int(8));
      return [`flip bit at ${at}`, c];
    }
    case 1: return [`insert byte at ${at}`, Buffer.concat([b.subarray(0, at), r.bytes(1), b.subarray(at)])];
    default: return [`delete byte at ${at}`, Buffer.concat([b.subarray(0, at), b.subarray(at + 1)])];
  }
}

export interface DifferentialOptions<P, R extends Reading> {
  seed: number;
  count: number;
  generate: (r: Rng) => P;
  treeEdits: Array<[string, (p: P, r: Rng) => void]>;
  /** The bytes a byte edit reaches (a CRL's tbsCertList, a whole request). */
  encode: (p: P) => Buffer;
  /** From edited bytes to what both read (a CRL is re-signed here). */
  finish?: (b: Buffer) => Buffer;
  ours: (der: Buffer) => R;
  theirs: (der: Buffer, dir: string) => Promise<R>;
  /** Why two readings of an accepted case differ, or undefined. */
  differ: (ours: R, theirs: R) => string | undefined;
}

export async function runDifferential<P, R extends Reading>(o: DifferentialOptions<P, R>): Promise<DifferentialResult> {
  const tmp = await scratchDir('estgw-fuzz-');
  const out: DifferentialResult = { findings: [], accepted: 0, refused: 0, stricter: 0 };
  try {
    for (let i = 0; i < o.count; i++) {
      const seed = caseSeed(o.seed, i);
      const r = rng(seed);
      const parts = o.generate(r);
      const steps: string[] = [];
      if (r.chance(0.5)) {
        const [name, edit] = r.pick(o.treeEdits);
        edit(parts, r);
        steps.push(name);
      }
      let bytes = o.encode(parts);
      if (r.chance(0.4)) {
        const [name, b] = byteEdit(r, bytes);
        bytes = b;
        steps.push(name);
      }
      const der = o.finish ? o.finish(bytes) : bytes;
      const ours = o.ours(der);
      const theirs = await o.theirs(der, tmp.dir);
      if (ours.accepted) out.accepted++;
      else out.refused++;
      let problem: string | undefined;
      if (ours.accepted && !theirs.accepted) problem = 'we accept what OpenSSL refuses';
      else if (ours.accepted) problem = o.differ(ours, theirs);
      else if (theirs.accepted) out.stricter++;
      if (problem) out.findings.push({ seed, steps, problem, der: der.toString('base64') });
    }
  } finally {
    await tmp.remove();
  }
  return out;
}
