// Differential fuzzing of the CRL codec (src/est/crl.ts) against `openssl crl`:
// generate valid v2 CRLs of one CA, mutate their tbsCertList (byte flips,
// insertions, deletions, and tree edits such as a dropped nextUpdate, a delta
// indicator, an unknown critical extension), re-sign so the mutation reaches
// past the signature, and read each with parseCrl + crlSignedBy and with
// `openssl crl -CAfile`. What we accept OpenSSL must accept too, with the same
// serials and cRLNumber: we are never the more lenient reader. The converse is
// counted, not a finding: we refuse on purpose what OpenSSL takes (v1, no
// nextUpdate or cRLNumber, delta, scoped and indirect CRLs, unknown critical
// extensions, sloppy DER). Used by test/est/crl-fuzz-differential.test.ts and
// scripts/fuzz-crl.ts.
import { sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EstError } from '../../src/errors.js';
import { toPem } from '../../src/est/base64.js';
import { crlSignedBy, parseCrl } from '../../src/est/crl.js';
import { TRUE, Tag, bitString, ctx, octetString, oid, seq, smallInteger, time, tlv, unsignedInteger } from '../../src/est/der.js';
import { encodeAuthorityKeyIdentifier, extension } from '../../src/est/extensions.js';
import { OID } from '../../src/est/oids.js';
import { signatureAlgorithmFor } from '../../src/est/signature.js';
import type { CaMaterial } from '../../src/pki/ca.js';
import { type DifferentialResult, runDifferential } from './differential.js';
import type { Rng } from './csr-fuzz.js';
import { run, scratchDir } from './cli.js';

export interface CrlReading {
  accepted: boolean;
  serials?: string[];
  number?: string;
  reason?: string;
}

const ENUMERATED = 0x0a;
const DAY = 86_400_000;

/** A valid CRL's parts, before encoding: mutations edit these or the encoded tbs. */
interface Parts {
  version: Buffer | undefined;
  issuer: Buffer;
  thisUpdate: Buffer;
  nextUpdate: Buffer | undefined;
  entries: Buffer[] | undefined;
  extensions: Buffer[] | undefined;
}

function generate(r: Rng, ca: CaMaterial): Parts {
  const base = Date.UTC(2026, 0, 1) + r.int(1000) * DAY;
  const entries = Array.from({ length: r.int(5) }, () => {
    const serial = unsignedInteger(r.bytes(1 + r.int(20)));
    const when = time(new Date(base - r.int(100) * DAY));
    const reason = r.int(11);
    const exts = reason === 0 || reason === 7 ? [] : [seq(extension(OID.cRLReason, false, tlv(ENUMERATED, Buffer.from([reason]))))];
    return seq(serial, when, ...exts);
  });
  return {
    version: smallInteger(1),
    issuer: ca.fields.subjectDer,
    thisUpdate: time(new Date(base)),
    nextUpdate: time(new Date(base + (1 + r.int(30)) * DAY)),
    entries: entries.length ? entries : undefined,
    extensions: [
      extension(OID.authorityKeyIdentifier, false, encodeAuthorityKeyIdentifier(ca.fields.subjectKeyId!)),
      extension(OID.cRLNumber, false, unsignedInteger(r.bytes(1 + r.int(6)))),
    ],
  };
}

const TREE_EDITS: Array<[string, (p: Parts, r: Rng) => void]> = [
  ['v1 (no version)', (p) => { p.version = undefined; }],
  ['version 3', (p) => { p.version = smallInteger(2); }],
  ['no nextUpdate', (p) => { p.nextUpdate = undefined; }],
  ['GeneralizedTime thisUpdate', (p) => { p.thisUpdate = tlv(Tag.GeneralizedTime, Buffer.from('20260301120000Z')); }],
  ['UTCTime without seconds', (p) => { p.thisUpdate = tlv(Tag.UTCTime, Buffer.from('2603011200Z')); }],
  ['empty revokedCertificates', (p) => { p.entries = []; }],
  ['no crlExtensions', (p) => { p.extensions = undefined; }],
  ['no cRLNumber', (p) => { p.extensions = p.extensions!.slice(0, 1); }],
  ['delta CRL', (p) => { p.extensions!.push(extension(OID.deltaCRLIndicator, true, smallInteger(1))); }],
  ['issuingDistributionPoint', (p) => { p.extensions!.push(extension(OID.issuingDistributionPoint, true, seq(tlv(0x81, Buffer.from([0xff]))))); }],
  ['indirect CRL', (p) => { p.extensions!.push(extension(OID.issuingDistributionPoint, true, seq(tlv(0x84, Buffer.from([0xff]))))); }],
  ['unknown critical extension', (p) => { p.extensions!.push(seq(oid('1.3.6.1.4.1.99999.7'), TRUE, octetString(Buffer.from([5, 0])))); }],
  ['unknown non-critical extension', (p) => { p.extensions!.push(extension('1.3.6.1.4.1.99999.8', false, Buffer.from([5, 0]))); }],
  ['duplicate cRLNumber', (p) => { p.extensions!.push(p.extensions![1]!); }],
  ['negative cRLNumber', (p) => { p.extensions![1] = extension(OID.cRLNumber, false, tlv(Tag.INTEGER, Buffer.from([0xff]))); }],
  ['entry with unknown critical extension', (p) => {
    p.entries = [seq(unsignedInteger(Buffer.from([7])), time(new Date(Date.UTC(2026, 0, 1))), seq(seq(oid('1.3.6.1.4.1.99999.9'), TRUE, octetString(Buffer.from([5, 0])))))];
  }],
  ['entry with certificateIssuer', (p) => {
    p.entries = [seq(unsignedInteger(Buffer.from([7])), time(new Date(Date.UTC(2026, 0, 1))), seq(extension(OID.certificateIssuer, true, seq(ctx(4, true, p.issuer)))))];
  }],
  ['entry with reasonCode 7', (p) => {
    p.entries = [seq(unsignedInteger(Buffer.from([7])), time(new Date(Date.UTC(2026, 0, 1))), seq(extension(OID.cRLReason, false, tlv(ENUMERATED, Buffer.from([7])))))];
  }],
  ['padded entry serial', (p) => { p.entries = [seq(tlv(Tag.INTEGER, Buffer.from([0, 7])), time(new Date(Date.UTC(2026, 0, 1))))]; }],
];

function encodeTbs(p: Parts, alg: Buffer): Buffer {
  return seq(
    ...(p.version ? [p.version] : []),
    alg,
    p.issuer,
    p.thisUpdate,
    ...(p.nextUpdate ? [p.nextUpdate] : []),
    ...(p.entries ? [seq(...p.entries)] : []),
    ...(p.extensions ? [ctx(0, true, seq(...p.extensions))] : []),
  );
}

export function ourReading(der: Buffer, caDer: Buffer): CrlReading {
  try {
    const crl = parseCrl(der);
    if (!crlSignedBy(crl, caDer)) return { accepted: false, reason: 'signature' };
    return { accepted: true, serials: crl.revoked.map((e) => e.serialHex).sort(), number: crl.number.toString(16) };
  } catch (e) {
    if (!(e instanceof EstError)) throw e; // a crash of the codec is a finding of its own
    return { accepted: false, reason: e.message };
  }
}

/** `openssl crl -CAfile`: accepted when it parses and says "verify OK". */
export async function opensslReading(der: Buffer, dir: string, caFile: string): Promise<CrlReading> {
  const f = join(dir, 'case.der');
  await writeFile(f, der);
  const r = await run('openssl', ['crl', '-inform', 'DER', '-in', f, '-noout', '-text', '-CAfile', caFile]);
  const out = `${r.stdout.toString('latin1')}${r.stderr}`;
  if (r.code !== 0 || !/verify OK/.test(out)) return { accepted: false };
  const serials = [...out.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^(00)+(?=.)/, '')).sort();
  const num = /X509v3 CRL Number:\s*\n\s*([0-9A-Fa-f:]+|\d+)/.exec(out)?.[1];
  return { accepted: true, serials, ...(num ? { number: num } : {}) };
}

/** Runs `count` cases; what each found, and how many were accepted by us and refused by us while OpenSSL accepted. */
export async function fuzzCrls(o: { seed: number; count: number; ca: CaMaterial }): Promise<DifferentialResult> {
  const tmp = await scratchDir('estgw-crl-fuzz-');
  const caFile = join(tmp.dir, 'ca.pem');
  await writeFile(caFile, toPem('CERTIFICATE', o.ca.certDer));
  const alg = signatureAlgorithmFor(o.ca.key);
  try {
    return await runDifferential({
      seed: o.seed,
      count: o.count,
      generate: (r) => generate(r, o.ca),
      treeEdits: TREE_EDITS,
      encode: (p) => encodeTbs(p, alg.der),
      // re-signed, so that the mutation reaches past the signature
      finish: (tbs) => seq(tbs, alg.der, bitString(sign(alg.digest, tbs, o.ca.key))),
      ours: (der) => ourReading(der, o.ca.certDer),
      theirs: (der, dir) => opensslReading(der, dir, caFile),
      differ: (ours, theirs) => (theirs.serials!.join() !== ours.serials!.join() ? `serials differ: ours ${ours.serials!.join()} / OpenSSL ${theirs.serials!.join()}` : undefined),
    });
  } finally {
    await tmp.remove();
  }
}
