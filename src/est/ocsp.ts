// OCSP (RFC 6960) as a CA-signed responder speaks it: strict DER requests in,
// BasicOCSPResponses signed by the CA that issued the certificates out, and a
// reader for such responses so a forwarding layer can check a parent's answer
// before relaying it. Pure: the signature goes through node:crypto.
//
// Requests are refused (malformedRequest) when they carry a signature or a
// requestorName: a signed request buys nothing here (anyone may ask about any
// certificate), and an unchecked signature would be a field we pretend to
// understand. A critical request extension other than the nonce is refused too.
import { createHash, type KeyObject, sign as nodeSign, X509Certificate } from 'node:crypto';
import { malformed } from '../errors.js';
import {
  NULL, Tag, type Tlv, bitString, children, clip, content, ctx, decodeOid, decodeSmallInteger, decodeTime, expectTag, octetString,
  oid, readWhole, seq, tlv, unsignedInteger, whole,
} from './der.js';
import { parseCertificate } from './certificate.js';
import { REASON_NAMES, serialKey } from './crl.js';
import { extension, parseExtensions } from './extensions.js';
import { signatureAlgorithmFor, verifySignature } from './signature.js';

export const OCSP_REQUEST_TYPE = 'application/ocsp-request';
export const OCSP_RESPONSE_TYPE = 'application/ocsp-response';

export const OCSP_OID = {
  basic: '1.3.6.1.5.5.7.48.1.1',
  nonce: '1.3.6.1.5.5.7.48.1.2',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** OCSPResponseStatus (RFC 6960 §4.2.1); 4 is unused. */
export const OcspStatus = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspStatusName = keyof typeof OcspStatus;
const STATUS_NAME = new Map<number, OcspStatusName>(Object.entries(OcspStatus).map(([k, v]) => [v, k as OcspStatusName]));

export type CertIdHash = 'sha1' | 'sha256';
const HASH_BY_OID: Record<string, { name: CertIdHash; len: number }> = {
  [OCSP_OID.sha1]: { name: 'sha1', len: 20 },
  [OCSP_OID.sha256]: { name: 'sha256', len: 32 },
};

export interface CertId {
  /** The CertID as the request encoded it: echoed byte for byte in the response. */
  der: Buffer;
  hash: CertIdHash;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Serial magnitude in lowercase hex, as the ledger keys it. */
  serialHex: string;
}

export interface OcspRequest {
  certIds: CertId[];
  /** RFC 8954 nonce (the octets inside the extension's OCTET STRING), 1..32 octets. */
  nonce?: Buffer;
}

export interface OcspRequestLimits {
  /** At most this many CertIDs in one request. */
  maxCertIds: number;
}

const ENUMERATED = 0x0a;
const NONCE_MAX = 32;

function decodeAlgorithm(buf: Buffer, t: Tlv | undefined, what: string): string {
  const parts = children(buf, expectTag(t, Tag.SEQUENCE, what));
  if (parts.length < 1 || parts.length > 2) throw malformed(`invalid ${what}`);
  const id = decodeOid(buf, parts[0]!);
  if (parts[1] && !(parts[1].tag === Tag.NULL && parts[1].end === parts[1].contentStart)) throw malformed(`invalid ${what}: parameters`);
  return id;
}

function decodeSerial(buf: Buffer, t: Tlv | undefined): string {
  const c = content(buf, expectTag(t, Tag.INTEGER, 'CertID serialNumber'));
  if (c.length === 0) throw malformed('invalid CertID: empty serialNumber');
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) throw malformed('invalid CertID: serialNumber not minimally encoded');
  // RFC 5280 §4.1.2.2: positive; no CA here issues another, and a reader could print it either way
  if (c[0]! & 0x80) throw malformed('invalid CertID: negative serialNumber');
  return serialKey(c);
}

export function parseCertId(buf: Buffer, t: Tlv): CertId {
  const f = children(buf, expectTag(t, Tag.SEQUENCE, 'CertID'));
  if (f.length !== 4) throw malformed('invalid CertID: expected hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber');
  const algOid = decodeAlgorithm(buf, f[0], 'CertID hashAlgorithm');
  const alg = HASH_BY_OID[algOid];
  if (!alg) throw malformed(`unsupported CertID hash algorithm ${clip(algOid)} (SHA-1 and SHA-256 are)`);
  const nameHash = content(buf, expectTag(f[1], Tag.OCTET_STRING, 'issuerNameHash'));
  const keyHash = content(buf, expectTag(f[2], Tag.OCTET_STRING, 'issuerKeyHash'));
  if (nameHash.length !== alg.len || keyHash.length !== alg.len) throw malformed(`invalid CertID: a ${alg.name} hash is ${alg.len} octets`);
  return { der: whole(buf, t), hash: alg.name, issuerNameHash: nameHash, issuerKeyHash: keyHash, serialHex: decodeSerial(buf, f[3]) };
}

/** Extensions of a request or one of its entries: the nonce is read, any other critical one refused. */
function readRequestExtensions(buf: Buffer, t: Tlv, what: string, allowNonce: boolean): Buffer | undefined {
  const inner = children(buf, t);
  if (inner.length !== 1) throw malformed(`invalid ${what}`);
  const exts = parseExtensions(buf, inner[0]!);
  if (exts.length === 0) throw malformed(`invalid ${what}: empty`);
  let nonce: Buffer | undefined;
  for (const e of exts) {
    if (allowNonce && e.oid === OCSP_OID.nonce) {
      const n = readWhole(e.value, 'nonce');
      expectTag(n, Tag.OCTET_STRING, 'nonce');
      const len = n.end - n.contentStart;
      // RFC 8954 §2.1: 1..32 octets
      if (len < 1 || len > NONCE_MAX) throw malformed(`invalid nonce: ${len} octets (1 to ${NONCE_MAX} are accepted)`);
      nonce = content(e.value, n);
    } else if (e.critical) throw malformed(`OCSP request refused: ${what} ${clip(e.oid)} is marked critical and not understood`);
  }
  return nonce;
}

/** An unsigned OCSPRequest (DER), or a `malformed` error saying why not. */
export function parseOcspRequest(der: Buffer, limits: OcspRequestLimits): OcspRequest {
  const top = expectTag(readWhole(der, 'OCSPRequest'), Tag.SEQUENCE, 'OCSPRequest');
  const outer = children(der, top);
  if (outer.length === 2 && outer[1]!.tag === 0xa0) throw malformed('OCSP request refused: signed requests are not supported (send it unsigned)');
  if (outer.length !== 1) throw malformed('invalid OCSPRequest');
  const f = children(der, expectTag(outer[0], Tag.SEQUENCE, 'TBSRequest'));
  let i = 0;
  if (f[i]?.tag === 0xa0) {
    const v = children(der, f[i]!);
    if (v.length !== 1 || decodeSmallInteger(der, v[0]!) !== 0) throw malformed('OCSP request refused: only version 1 requests exist');
    i++;
  }
  if (f[i]?.tag === 0xa1) throw malformed('OCSP request refused: requestorName belongs to signed requests, which are not supported');
  const list = children(der, expectTag(f[i++], Tag.SEQUENCE, 'requestList'));
  if (list.length === 0) throw malformed('invalid OCSPRequest: empty requestList');
  if (list.length > limits.maxCertIds) throw malformed(`OCSP request refused: ${list.length} certificates asked about, at most ${limits.maxCertIds} per request`);
  const certIds = list.map((r) => {
    const parts = children(der, expectTag(r, Tag.SEQUENCE, 'Request'));
    if (parts.length < 1 || parts.length > 2) throw malformed('invalid Request');
    if (parts[1]) {
      if (parts[1].tag !== 0xa0) throw malformed('invalid Request: singleRequestExtensions');
      readRequestExtensions(der, parts[1], 'singleRequestExtension', false);
    }
    return parseCertId(der, parts[0]!);
  });
  let nonce: Buffer | undefined;
  if (f[i]?.tag === 0xa2) nonce = readRequestExtensions(der, f[i++]!, 'requestExtension', true);
  if (i !== f.length) throw malformed('invalid TBSRequest: unexpected fields');
  return { certIds, ...(nonce ? { nonce } : {}) };
}

/** The request a client sends; tests and the relay build requests with it. */
export function buildOcspRequest(certIds: Buffer[], nonce?: Buffer): Buffer {
  const exts = nonce ? [ctx(2, true, seq(extension(OCSP_OID.nonce, false, octetString(nonce))))] : [];
  return seq(seq(seq(...certIds.map((c) => seq(c))), ...exts));
}

/** The subjectPublicKey bits of an SPKI (what issuerKeyHash and byKey hash). */
function publicKeyBits(spki: Buffer): Buffer {
  const top = readWhole(spki, 'SubjectPublicKeyInfo');
  return content(spki, expectTag(children(spki, top)[1], Tag.BIT_STRING, 'subjectPublicKey')).subarray(1);
}

/** Does this CertID name this CA (its subject Name DER and SPKI)? */
export function certIdNamesIssuer(id: CertId, subjectDer: Buffer, spki: Buffer): boolean {
  const h = (b: Buffer) => createHash(id.hash).update(b).digest();
  return h(subjectDer).equals(id.issuerNameHash) && h(publicKeyBits(spki)).equals(id.issuerKeyHash);
}

/** A CertID for a certificate of this issuer (clients and tests build them). */
export function buildCertId(hash: CertIdHash, issuerSubjectDer: Buffer, issuerSpki: Buffer, serialMagnitude: Buffer): Buffer {
  const h = (b: Buffer) => octetString(createHash(hash).update(b).digest());
  const alg = seq(oid(hash === 'sha1' ? OCSP_OID.sha1 : OCSP_OID.sha256), NULL);
  return seq(alg, h(issuerSubjectDer), h(publicKeyBits(issuerSpki)), unsignedInteger(serialMagnitude));
}

export type SingleStatus =
  | { status: 'good' }
  | { status: 'unknown' }
  | { status: 'revoked'; revokedAt: Date; reason: string };

export interface SingleResponse {
  certId: Buffer;
  cert: SingleStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

const REASON_CODE = new Map(Object.entries(REASON_NAMES).map(([code, name]) => [name, Number(code)]));

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** RFC 6960 uses GeneralizedTime throughout, whole seconds, Zulu. */
function generalizedTime(d: Date): Buffer {
  const s = pad(d.getUTCFullYear(), 4) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) + pad(d.getUTCHours()) + pad(d.getUTCMinutes()) + pad(d.getUTCSeconds()) + 'Z';
  return tlv(Tag.GeneralizedTime, Buffer.from(s, 'latin1'));
}

function encodeStatus(s: SingleStatus): Buffer {
  if (s.status === 'good') return Buffer.from([0x80, 0x00]);
  if (s.status === 'unknown') return Buffer.from([0x82, 0x00]);
  const code = REASON_CODE.get(s.reason) ?? 0;
  // like the CRL: unspecified is left out rather than stated
  const reason = code === 0 ? [] : [ctx(0, true, tlv(ENUMERATED, Buffer.from([code])))];
  return tlv(0xa1, generalizedTime(s.revokedAt), ...reason);
}

export interface ResponseSigner {
  /** The CA certificate (DER) that signs: it rides along in certs. */
  certDer: Buffer;
  /** Its SubjectPublicKeyInfo, as the caller already read it: the key hash is the responderID. */
  spki: Buffer;
  key: KeyObject;
}

/** A successful OCSPResponse: a BasicOCSPResponse signed by the CA itself (RFC 6960 §4.2.2.2), responderID byKey. */
export function buildOcspResponse(signer: ResponseSigner, producedAt: Date, responses: SingleResponse[], nonce?: Buffer): Buffer {
  const keyHash = createHash('sha1').update(publicKeyBits(signer.spki)).digest();
  const alg = signatureAlgorithmFor(signer.key);
  const tbs = seq(
    ctx(2, true, octetString(keyHash)),
    generalizedTime(producedAt),
    seq(...responses.map((r) => seq(r.certId, encodeStatus(r.cert), generalizedTime(r.thisUpdate), ctx(0, true, generalizedTime(r.nextUpdate))))),
    ...(nonce ? [ctx(1, true, seq(extension(OCSP_OID.nonce, false, octetString(nonce))))] : []),
  );
  const basic = seq(tbs, alg.der, bitString(nodeSign(alg.digest, tbs, signer.key)), ctx(0, true, seq(signer.certDer)));
  return seq(tlv(ENUMERATED, Buffer.from([OcspStatus.successful])), ctx(0, true, seq(oid(OCSP_OID.basic), octetString(basic))));
}

/** An OCSPResponse that is only a status (no responseBytes): every status but successful. */
export function ocspErrorResponse(status: Exclude<OcspStatusName, 'successful'>): Buffer {
  return seq(tlv(ENUMERATED, Buffer.from([OcspStatus[status]])));
}

// ---- reading responses (the relay checks what its parent answered) ----

export interface ParsedSingleResponse {
  certId: CertId;
  cert: SingleStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export interface ParsedBasicResponse {
  tbs: Buffer;
  sigAlgOid: string;
  signature: Buffer;
  responderKeyHash?: Buffer;
  responderNameDer?: Buffer;
  producedAt: Date;
  responses: ParsedSingleResponse[];
  nonce?: Buffer;
  certs: Buffer[];
}

export type ParsedOcspResponse =
  | { status: 'successful'; basic: ParsedBasicResponse }
  | { status: Exclude<OcspStatusName, 'successful'> };

function decodeGeneralizedTime(buf: Buffer, t: Tlv | undefined, what: string): Date {
  return decodeTime(buf, expectTag(t, Tag.GeneralizedTime, what));
}

function decodeSingleStatus(buf: Buffer, t: Tlv | undefined): SingleStatus {
  if (!t) throw malformed('invalid SingleResponse: no certStatus');
  if ((t.tag === 0x80 || t.tag === 0x82) && t.end === t.contentStart) return { status: t.tag === 0x80 ? 'good' : 'unknown' };
  if (t.tag !== 0xa1) throw malformed('invalid SingleResponse: certStatus');
  const f = children(buf, t);
  const revokedAt = decodeGeneralizedTime(buf, f[0], 'revocationTime');
  let reason = 'unspecified';
  if (f[1]) {
    const inner = children(buf, expectTag(f[1], 0xa0, 'revocationReason'));
    const r = expectTag(inner[0], ENUMERATED, 'revocationReason');
    const name = r.end - r.contentStart === 1 ? REASON_NAMES[buf[r.contentStart]!] : undefined;
    if (inner.length !== 1 || !name) throw malformed('invalid revocationReason');
    reason = name;
  }
  if (f.length > 2) throw malformed('invalid RevokedInfo');
  return { status: 'revoked', revokedAt, reason };
}

function parseSingle(buf: Buffer, t: Tlv): ParsedSingleResponse {
  const f = children(buf, expectTag(t, Tag.SEQUENCE, 'SingleResponse'));
  const certId = parseCertId(buf, f[0]!);
  const cert = decodeSingleStatus(buf, f[1]);
  const thisUpdate = decodeGeneralizedTime(buf, f[2], 'thisUpdate');
  let i = 3;
  let nextUpdate: Date | undefined;
  if (f[i]?.tag === 0xa0) {
    const inner = children(buf, f[i++]!);
    if (inner.length !== 1) throw malformed('invalid nextUpdate');
    nextUpdate = decodeGeneralizedTime(buf, inner[0], 'nextUpdate');
  }
  if (f[i]?.tag === 0xa1) {
    for (const e of parseExtensions(buf, children(buf, f[i++]!)[0]!)) if (e.critical) throw malformed(`OCSP response refused: critical singleExtension ${clip(e.oid)}`);
  }
  if (i !== f.length) throw malformed('invalid SingleResponse: unexpected fields');
  return { certId, cert, thisUpdate, ...(nextUpdate ? { nextUpdate } : {}) };
}

function parseBasic(buf: Buffer): ParsedBasicResponse {
  const top = expectTag(readWhole(buf, 'BasicOCSPResponse'), Tag.SEQUENCE, 'BasicOCSPResponse');
  const parts = children(buf, top);
  if (parts.length < 3 || parts.length > 4) throw malformed('invalid BasicOCSPResponse');
  const tbsT = expectTag(parts[0], Tag.SEQUENCE, 'ResponseData');
  const sigAlgOid = decodeAlgorithm(buf, parts[1], 'signatureAlgorithm');
  const sigT = expectTag(parts[2], Tag.BIT_STRING, 'signature');
  if (sigT.end === sigT.contentStart || buf[sigT.contentStart] !== 0) throw malformed('invalid signature: unused bits');
  const certs = parts[3] ? children(buf, expectTag(children(buf, expectTag(parts[3], 0xa0, 'certs'))[0], Tag.SEQUENCE, 'certs')).map((c) => whole(buf, c)) : [];
  const f = children(buf, tbsT);
  let i = 0;
  if (f[i]?.tag === 0xa0) {
    const v = children(buf, f[i++]!);
    if (v.length !== 1 || decodeSmallInteger(buf, v[0]!) !== 0) throw malformed('invalid ResponseData version');
  }
  const rid = f[i++];
  let responderKeyHash: Buffer | undefined;
  let responderNameDer: Buffer | undefined;
  if (rid?.tag === 0xa2) {
    const inner = children(buf, rid);
    if (inner.length !== 1) throw malformed('invalid responderID');
    responderKeyHash = content(buf, expectTag(inner[0], Tag.OCTET_STRING, 'responderID byKey'));
  } else if (rid?.tag === 0xa1) {
    const inner = children(buf, rid);
    if (inner.length !== 1) throw malformed('invalid responderID');
    responderNameDer = whole(buf, expectTag(inner[0], Tag.SEQUENCE, 'responderID byName'));
  } else throw malformed('invalid responderID');
  const producedAt = decodeGeneralizedTime(buf, f[i++], 'producedAt');
  const responses = children(buf, expectTag(f[i++], Tag.SEQUENCE, 'responses')).map((r) => parseSingle(buf, r));
  let nonce: Buffer | undefined;
  if (f[i]?.tag === 0xa1) {
    for (const e of parseExtensions(buf, children(buf, f[i++]!)[0]!)) {
      if (e.oid === OCSP_OID.nonce) {
        const n = readWhole(e.value, 'nonce');
        nonce = content(e.value, expectTag(n, Tag.OCTET_STRING, 'nonce'));
      } else if (e.critical) throw malformed(`OCSP response refused: critical responseExtension ${clip(e.oid)}`);
    }
  }
  if (i !== f.length) throw malformed('invalid ResponseData: unexpected fields');
  return {
    tbs: whole(buf, tbsT), sigAlgOid, signature: content(buf, sigT).subarray(1), producedAt, responses, certs,
    ...(responderKeyHash ? { responderKeyHash } : {}), ...(responderNameDer ? { responderNameDer } : {}), ...(nonce ? { nonce } : {}),
  };
}

/** An OCSPResponse (DER): its status, and for a successful one its BasicOCSPResponse. The signature is not checked here. */
export function parseOcspResponse(der: Buffer): ParsedOcspResponse {
  const top = expectTag(readWhole(der, 'OCSPResponse'), Tag.SEQUENCE, 'OCSPResponse');
  const f = children(der, top);
  const st = expectTag(f[0], ENUMERATED, 'responseStatus');
  const name = st.end - st.contentStart === 1 ? STATUS_NAME.get(der[st.contentStart]!) : undefined;
  if (!name) throw malformed('invalid OCSPResponse: responseStatus');
  if (name !== 'successful') {
    if (f.length !== 1) throw malformed('invalid OCSPResponse: an error status carries no responseBytes');
    return { status: name };
  }
  if (f.length !== 2) throw malformed('invalid OCSPResponse: no responseBytes');
  const rb = children(der, expectTag(children(der, expectTag(f[1], 0xa0, 'responseBytes'))[0], Tag.SEQUENCE, 'ResponseBytes'));
  if (rb.length !== 2) throw malformed('invalid ResponseBytes');
  const type = decodeOid(der, rb[0]!);
  if (type !== OCSP_OID.basic) throw malformed(`unsupported OCSP response type ${clip(type)}`);
  return { status: 'successful', basic: parseBasic(content(der, expectTag(rb[1], Tag.OCTET_STRING, 'response'))) };
}

/**
 * Whether this CA certificate (DER) signed this response directly, as a
 * CA-signed response (RFC 6960 §4.2.2.2): the responderID names its key or
 * subject, and the signature verifies with node:crypto. Delegated responders
 * are not accepted: the relay only passes down what the CA itself said.
 */
export function signedByCa(basic: ParsedBasicResponse, caDer: Buffer): boolean {
  const ca = parseCertificate(caDer);
  if (basic.responderKeyHash && !createHash('sha1').update(publicKeyBits(ca.spki)).digest().equals(basic.responderKeyHash)) return false;
  if (basic.responderNameDer && !basic.responderNameDer.equals(ca.subjectDer)) return false;
  try {
    return verifySignature(basic.sigAlgOid, basic.tbs, new X509Certificate(caDer).publicKey, basic.signature);
  } catch {
    return false;
  }
}
