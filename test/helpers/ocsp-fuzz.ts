// Differential fuzzing of the OCSP request parser (src/est/ocsp.ts) against
// `openssl ocsp -reqin FILE -req_text`: generate valid unsigned requests, edit
// their tree (a version, a requestorName, a signature, nonces of every length,
// critical extensions, other hash algorithms, bad serials) or their bytes, and
// read each both ways. What we accept OpenSSL must parse as an OCSP request,
// with the same serials and the same nonce: we are never the more lenient
// reader. What we refuse and OpenSSL takes is counted (our documented
// strictness: signed requests, requestorName, nonce lengths outside 1..32,
// unknown critical extensions, hashes other than SHA-1/SHA-256, sloppy DER).
// Used by test/est/ocsp-fuzz-differential.test.ts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EstError } from '../../src/errors.js';
import { NULL, TRUE, Tag, bitString, ctx, octetString, oid, seq, smallInteger, tlv, unsignedInteger } from '../../src/est/der.js';
import { extension } from '../../src/est/extensions.js';
import { OCSP_OID, parseOcspRequest } from '../../src/est/ocsp.js';
import type { Rng } from './csr-fuzz.js';
import { run } from './cli.js';
import { type DifferentialResult, runDifferential } from './differential.js';

const MAX_CERT_IDS = 8;

export interface OcspReqReading {
  accepted: boolean;
  serials?: string[];
  /** Hex of the nonce's extnValue as OpenSSL prints it (the OCTET STRING with its header). */
  nonce?: string;
  reason?: string;
}

interface Parts {
  version: Buffer | undefined;
  requestor: Buffer | undefined;
  requests: Buffer[];
  extensions: Buffer[] | undefined;
  signature: Buffer | undefined;
}

const hashAlg = (h: 'sha1' | 'sha256', params = true) => seq(oid(h === 'sha1' ? OCSP_OID.sha1 : OCSP_OID.sha256), ...(params ? [NULL] : []));
const certId = (r: Rng, o: { alg?: Buffer; len?: number; serial?: Buffer } = {}) => {
  const h = r.chance(0.5) ? 'sha1' : 'sha256';
  const len = o.len ?? (h === 'sha1' ? 20 : 32);
  return seq(o.alg ?? hashAlg(h, r.chance(0.8)), octetString(r.bytes(len)), octetString(r.bytes(len)), o.serial ?? unsignedInteger(r.bytes(1 + r.int(20))));
};
const nonceExt = (n: Buffer, critical = false) => extension(OCSP_OID.nonce, critical, octetString(n));

function generate(r: Rng): Parts {
  return {
    version: undefined,
    requestor: undefined,
    requests: Array.from({ length: 1 + r.int(3) }, () => seq(certId(r))),
    extensions: r.chance(0.6) ? [nonceExt(r.bytes(1 + r.int(32)))] : undefined,
    signature: undefined,
  };
}

const TREE_EDITS: Array<[string, (p: Parts, r: Rng) => void]> = [
  ['version v1 stated', (p) => { p.version = ctx(0, true, smallInteger(0)); }],
  ['version 2', (p) => { p.version = ctx(0, true, smallInteger(1)); }],
  ['requestorName', (p) => { p.requestor = ctx(1, true, tlv(0x82, Buffer.from('client.plant'))); }],
  ['signed', (p) => { p.signature = ctx(0, true, seq(seq(oid('1.2.840.10045.4.3.2')), bitString(Buffer.alloc(64, 1)))); }],
  ['empty requestList', (p) => { p.requests = []; }],
  ['too many CertIDs', (p, r) => { p.requests = Array.from({ length: MAX_CERT_IDS + 1 }, () => seq(certId(r))); }],
  ['empty nonce', (p) => { p.extensions = [nonceExt(Buffer.alloc(0))]; }],
  ['33-octet nonce', (p, r) => { p.extensions = [nonceExt(r.bytes(33))]; }],
  ['32-octet nonce', (p, r) => { p.extensions = [nonceExt(r.bytes(32))]; }],
  ['critical nonce', (p, r) => { p.extensions = [nonceExt(r.bytes(16), true)]; }],
  ['nonce not an OCTET STRING', (p) => { p.extensions = [extension(OCSP_OID.nonce, false, smallInteger(5))]; }],
  ['bare nonce (no inner OCTET STRING)', (p, r) => { p.extensions = [seq(oid(OCSP_OID.nonce), octetString(r.bytes(16)))]; }],
  ['empty requestExtensions', (p) => { p.extensions = []; }],
  ['unknown critical extension', (p) => { p.extensions = [...(p.extensions ?? []), seq(oid('1.3.6.1.4.1.99999.7'), TRUE, octetString(Buffer.from([5, 0])))]; }],
  ['unknown non-critical extension', (p) => { p.extensions = [...(p.extensions ?? []), extension('1.3.6.1.4.1.99999.8', false, Buffer.from([5, 0]))]; }],
  ['duplicate nonce', (p, r) => { p.extensions = [nonceExt(r.bytes(8)), nonceExt(r.bytes(8))]; }],
  ['MD5 CertID', (p, r) => { p.requests[0] = seq(certId(r, { alg: seq(oid('1.2.840.113549.2.5'), NULL), len: 16 })); }],
  ['SHA-1 CertID with a 32-octet hash', (p, r) => { p.requests[0] = seq(certId(r, { alg: hashAlg('sha1'), len: 32 })); }],
  ['hash parameters not NULL', (p, r) => { p.requests[0] = seq(certId(r, { alg: seq(oid(OCSP_OID.sha1), smallInteger(0)) })); }],
  ['padded serial', (p, r) => { p.requests[0] = seq(certId(r, { serial: tlv(Tag.INTEGER, Buffer.from([0, 7])) })); }],
  ['negative serial', (p, r) => { p.requests[0] = seq(certId(r, { serial: tlv(Tag.INTEGER, Buffer.from([0xff, 0x01])) })); }],
  ['empty serial', (p, r) => { p.requests[0] = seq(certId(r, { serial: tlv(Tag.INTEGER, Buffer.alloc(0)) })); }],
  ['singleRequestExtensions, non-critical', (p, r) => { p.requests[0] = seq(certId(r), ctx(0, true, seq(extension('1.3.6.1.4.1.99999.9', false, NULL)))); }],
  ['singleRequestExtensions, critical', (p, r) => { p.requests[0] = seq(certId(r), ctx(0, true, seq(seq(oid('1.3.6.1.4.1.99999.9'), TRUE, octetString(NULL))))); }],
];

const encode = (p: Parts): Buffer => {
  const tbs = seq(...(p.version ? [p.version] : []), ...(p.requestor ? [p.requestor] : []), seq(...p.requests), ...(p.extensions ? [ctx(2, true, seq(...p.extensions))] : []));
  return seq(tbs, ...(p.signature ? [p.signature] : []));
};

/** A serial as a number in hex: OpenSSL prints no leading zero nibble, the ledger keys whole octets. */
const nibbles = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, '');

export function ourReading(der: Buffer): OcspReqReading {
  try {
    const req = parseOcspRequest(der, { maxCertIds: MAX_CERT_IDS });
    return { accepted: true, serials: req.certIds.map((c) => nibbles(c.serialHex)), ...(req.nonce ? { nonce: octetString(req.nonce).toString('hex') } : {}) };
  } catch (e) {
    if (!(e instanceof EstError)) throw e; // a crash of the codec is a finding of its own
    return { accepted: false, reason: e.message };
  }
}

/** `openssl ocsp -reqin -req_text`: accepted when it exits 0 and prints the request. */
export async function opensslReading(der: Buffer, dir: string): Promise<OcspReqReading> {
  const f = join(dir, 'case.der');
  await writeFile(f, der);
  const r = await run('openssl', ['ocsp', '-reqin', f, '-req_text']);
  const out = `${r.stdout.toString('latin1')}${r.stderr}`;
  if (r.code !== 0 || !/OCSP Request Data:/.test(out)) return { accepted: false };
  const serials = [...out.matchAll(/Serial Number: (-?[0-9A-F]+)/g)].map((m) => nibbles(m[1]!));
  const nonce = /OCSP Nonce:[^\n]*\n\s*([0-9A-F]+)/.exec(out)?.[1]?.toLowerCase();
  return { accepted: true, serials, ...(nonce ? { nonce } : {}) };
}

/** Runs `count` cases: what each found, how many we accepted, refused, and refused while OpenSSL parsed them. */
export function fuzzOcspRequests(o: { seed: number; count: number }): Promise<DifferentialResult> {
  return runDifferential({
    seed: o.seed,
    count: o.count,
    generate,
    treeEdits: TREE_EDITS,
    encode,
    ours: ourReading,
    theirs: opensslReading,
    differ: (ours, theirs) =>
      theirs.serials!.join() !== ours.serials!.join() ? `serials differ: ours ${ours.serials!.join()} / OpenSSL ${theirs.serials!.join()}`
        : ours.nonce !== theirs.nonce ? `nonce differs: ours ${ours.nonce} / OpenSSL ${theirs.nonce}` : undefined,
  });
}
