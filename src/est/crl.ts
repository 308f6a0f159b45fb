// Certificate revocation lists (RFC 5280 §5) as a relying party reads them:
// strict DER, version 2, complete and direct. A CRL that could leave a
// revocation out of what it says (a delta, an indirect CRL whose entries speak
// for other issuers, a partition by issuingDistributionPoint, an extension we
// do not understand marked critical) is refused rather than half-understood.
// The signature goes through node:crypto against the issuing CA's key.
import { X509Certificate } from 'node:crypto';
import { malformed } from '../errors.js';
import {
  Tag, type Tlv, children, clip, content, decodeOid, decodeSmallInteger, decodeTime, expectTag, readWhole, whole,
} from './der.js';
import { type CertFields, parseCertificate } from './certificate.js';
import { parseExtensions } from './extensions.js';
import { OID } from './oids.js';
import { verifySignature } from './signature.js';

/** RFC 5280 §5.3.1 CRLReason by code; 7 is unused. */
export const REASON_NAMES: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'caCompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

export interface CrlRevoked {
  /** The serial's magnitude in lowercase hex without leading zero octets, as the ledger keys it. */
  serialHex: string;
  revokedAt: Date;
  /** Reason name; `unspecified` when the entry carries no reasonCode. */
  reason: string;
}

export interface ParsedCrl {
  der: Buffer;
  tbs: Buffer;
  sigAlgOid: string;
  signature: Buffer;
  issuerDer: Buffer;
  /** authorityKeyIdentifier keyIdentifier; absent when the CRL names none. */
  keyId?: Buffer;
  /** cRLNumber. */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: CrlRevoked[];
}

const ENUMERATED = 0x0a;
const critical = (what: string, id: string) => malformed(`CRL refused: ${what} ${clip(id)} is marked critical and not understood`);

/** Magnitude of a DER INTEGER as hex: a negative serial (which RFC 5280 forbids, yet some CAs wrote) keeps its bytes. */
export function serialKey(integerContent: Uint8Array): string {
  let i = 0;
  while (i < integerContent.length - 1 && integerContent[i] === 0) i++;
  return Buffer.from(integerContent.subarray(i)).toString('hex');
}

function decodeInteger(buf: Buffer, t: Tlv, what: string): Buffer {
  expectTag(t, Tag.INTEGER, what);
  const c = content(buf, t);
  if (c.length === 0) throw malformed(`invalid ${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) throw malformed(`invalid ${what}: INTEGER not minimally encoded`);
  return c;
}

function decodeTimeStrict(buf: Buffer, t: Tlv | undefined, what: string): Date {
  if (!t || (t.tag !== Tag.UTCTime && t.tag !== Tag.GeneralizedTime)) throw malformed(`invalid CRL: ${what} missing or not a time`);
  return decodeTime(buf, t);
}

function decodeAlgorithm(buf: Buffer, t: Tlv | undefined, what: string): { oid: string; der: Buffer } {
  const parts = children(buf, expectTag(t, Tag.SEQUENCE, what));
  if (parts.length < 1 || parts.length > 2) throw malformed(`invalid ${what}`);
  const id = decodeOid(buf, parts[0]!);
  if (parts[1] && !(parts[1].tag === Tag.NULL && parts[1].end === parts[1].contentStart)) throw malformed(`invalid ${what}: parameters`);
  return { oid: id, der: whole(buf, t!) };
}

/** keyIdentifier [0] of an AuthorityKeyIdentifier (its extnValue); the other fields are read past. */
export function decodeAkiKeyId(value: Buffer): Buffer | undefined {
  const top = expectTag(readWhole(value, 'authorityKeyIdentifier'), Tag.SEQUENCE, 'authorityKeyIdentifier');
  const parts = children(value, top);
  let last = -1;
  let keyId: Buffer | undefined;
  for (const p of parts) {
    const n = p.tag & 0x1f;
    if ((p.tag & 0xc0) !== 0x80 || n > 2 || n <= last) throw malformed('invalid authorityKeyIdentifier');
    last = n;
    if (n === 0) {
      if (p.tag !== 0x80) throw malformed('invalid authorityKeyIdentifier: keyIdentifier');
      keyId = content(value, p);
    }
  }
  return keyId;
}

function decodeNumber(value: Buffer): bigint {
  const t = readWhole(value, 'cRLNumber');
  const c = decodeInteger(value, t, 'cRLNumber');
  if (c[0]! & 0x80) throw malformed('invalid cRLNumber: negative');
  // RFC 5280 §5.2.3: at most 20 octets
  if (c.length > 21 || (c.length === 21 && c[0] !== 0)) throw malformed('invalid cRLNumber: longer than 20 octets');
  return BigInt(`0x${c.toString('hex')}`);
}

/** issuingDistributionPoint: indirectCRL is [4]; any IDP scopes the CRL. */
function refuseIdp(value: Buffer): never {
  const top = expectTag(readWhole(value, 'issuingDistributionPoint'), Tag.SEQUENCE, 'issuingDistributionPoint');
  const indirect = children(value, top).some((p) => p.tag === 0x84 && p.end - p.contentStart === 1 && value[p.contentStart] !== 0);
  throw malformed(indirect
    ? 'CRL refused: an indirect CRL (issuingDistributionPoint indirectCRL) lists certificates of other issuers; only direct CRLs are supported'
    : 'CRL refused: a CRL scoped by issuingDistributionPoint covers only part of its issuer\'s certificates; only complete CRLs are supported');
}

function parseEntry(buf: Buffer, t: Tlv): CrlRevoked {
  const f = children(buf, expectTag(t, Tag.SEQUENCE, 'revokedCertificate'));
  if (f.length < 2 || f.length > 3) throw malformed('invalid CRL entry');
  const serial = decodeInteger(buf, f[0]!, 'CRL entry serial');
  const revokedAt = decodeTimeStrict(buf, f[1], 'revocationDate');
  let reason = 'unspecified';
  if (f[2]) {
    const exts = parseExtensions(buf, f[2]);
    if (exts.length === 0) throw malformed('invalid CRL entry: empty crlEntryExtensions');
    for (const e of exts) {
      if (e.oid === OID.cRLReason) {
        const r = readWhole(e.value, 'reasonCode');
        expectTag(r, ENUMERATED, 'reasonCode');
        if (r.end - r.contentStart !== 1) throw malformed('invalid reasonCode');
        const name = REASON_NAMES[e.value[r.contentStart]!];
        if (!name) throw malformed(`invalid reasonCode ${e.value[r.contentStart]}`);
        reason = name;
      } else if (e.oid === OID.certificateIssuer) {
        throw malformed('CRL refused: an entry names another certificate issuer (an indirect CRL); only direct CRLs are supported');
      } else if (e.oid === OID.invalidityDate) {
        const d = readWhole(e.value, 'invalidityDate');
        expectTag(d, Tag.GeneralizedTime, 'invalidityDate');
        decodeTime(e.value, d);
      } else if (e.critical) throw critical('CRL entry extension', e.oid);
    }
  }
  return { serialHex: serialKey(serial), revokedAt, reason };
}

/** A complete, direct version 2 CRL (DER), or a `malformed` error saying why not. The signature is not checked here. */
export function parseCrl(der: Buffer): ParsedCrl {
  const top = expectTag(readWhole(der, 'CertificateList'), Tag.SEQUENCE, 'CertificateList');
  const parts = children(der, top);
  if (parts.length !== 3) throw malformed('invalid CertificateList: expected tbsCertList, signatureAlgorithm, signatureValue');
  const tbsT = expectTag(parts[0], Tag.SEQUENCE, 'tbsCertList');
  const outerAlg = decodeAlgorithm(der, parts[1], 'signatureAlgorithm');
  const sigT = expectTag(parts[2], Tag.BIT_STRING, 'signatureValue');
  if (sigT.end === sigT.contentStart || der[sigT.contentStart] !== 0) throw malformed('invalid signatureValue: unused bits');

  const f = children(der, tbsT);
  let i = 0;
  if (f[0]?.tag !== Tag.INTEGER || decodeSmallInteger(der, f[0]) !== 1) throw malformed('CRL refused: only version 2 CRLs are supported (v1 has no cRLNumber to order them by)');
  i++;
  const innerAlg = decodeAlgorithm(der, f[i++], 'signature');
  // RFC 5280 §5.1.1.2: the same algorithm inside and outside the signed part
  if (!innerAlg.der.equals(outerAlg.der)) throw malformed('invalid CRL: signature algorithms inside and outside tbsCertList differ');
  const issuerT = expectTag(f[i++], Tag.SEQUENCE, 'issuer');
  if (issuerT.end === issuerT.contentStart) throw malformed('invalid CRL: empty issuer name');
  for (const rdn of children(der, issuerT)) for (const atv of children(der, expectTag(rdn, Tag.SET, 'RDN'))) {
    const av = children(der, expectTag(atv, Tag.SEQUENCE, 'AttributeTypeAndValue'));
    if (av.length !== 2) throw malformed('invalid CRL issuer: AttributeTypeAndValue');
    decodeOid(der, av[0]!);
  }
  const thisUpdate = decodeTimeStrict(der, f[i++], 'thisUpdate');
  const nextT = f[i];
  if (!nextT || (nextT.tag !== Tag.UTCTime && nextT.tag !== Tag.GeneralizedTime)) throw malformed('CRL refused: no nextUpdate (RFC 5280 §5.1.2.5 requires it; without it staleness cannot be judged)');
  const nextUpdate = decodeTime(der, nextT);
  i++;
  let revoked: CrlRevoked[] = [];
  if (f[i]?.tag === Tag.SEQUENCE) {
    const list = children(der, f[i]!);
    // §5.1.2.6: absent, not empty
    if (list.length === 0) throw malformed('invalid CRL: empty revokedCertificates');
    revoked = list.map((e) => parseEntry(der, e));
    i++;
  }
  let keyId: Buffer | undefined;
  let number: bigint | undefined;
  if (f[i]?.tag === 0xa0) {
    const inner = children(der, f[i]!);
    if (inner.length !== 1) throw malformed('invalid crlExtensions');
    const exts = parseExtensions(der, inner[0]!);
    if (exts.length === 0) throw malformed('invalid crlExtensions: empty');
    for (const e of exts) {
      if (e.oid === OID.authorityKeyIdentifier) keyId = decodeAkiKeyId(e.value);
      else if (e.oid === OID.cRLNumber) number = decodeNumber(e.value);
      else if (e.oid === OID.deltaCRLIndicator) throw malformed('CRL refused: a delta CRL (deltaCRLIndicator) is not supported; only complete CRLs are');
      else if (e.oid === OID.issuingDistributionPoint) refuseIdp(e.value);
      else if (e.critical) throw critical('CRL extension', e.oid);
    }
    i++;
  }
  if (i !== f.length) throw malformed('invalid tbsCertList: unexpected fields');
  if (number === undefined) throw malformed('CRL refused: no cRLNumber (RFC 5280 §5.2.3), so a newer CRL cannot be told from an older one');
  const sig = content(der, sigT);
  return {
    der,
    tbs: whole(der, tbsT),
    sigAlgOid: outerAlg.oid,
    signature: sig.subarray(1),
    issuerDer: whole(der, issuerT),
    ...(keyId ? { keyId } : {}),
    number,
    thisUpdate,
    nextUpdate,
    revoked,
  };
}

/**
 * Why this CA certificate (DER) did not sign this CRL, or undefined when it did:
 * its subject is the CRL's issuer, byte for byte, its key identifier the CRL's
 * (when both name one), it is a CA that may sign CRLs (keyUsage cRLSign, when
 * it has keyUsage), and the signature verifies with node:crypto (RFC 5280 §6.3.3 (f), (g)).
 */
export function crlSignatureProblem(crl: ParsedCrl, caDer: Buffer): string | undefined {
  let ca: CertFields;
  try {
    ca = parseCertificate(caDer);
  } catch {
    return 'the CA certificate cannot be read';
  }
  if (!ca.subjectDer.equals(crl.issuerDer)) return 'its issuer is not the CA certificate';
  if (crl.keyId && ca.subjectKeyId && !crl.keyId.equals(ca.subjectKeyId)) return 'it was signed by another key of the CA';
  if (!ca.basicConstraints?.ca) return 'the certificate is not a CA';
  if (ca.keyUsage && !ca.keyUsage.includes('cRLSign')) return 'the CA certificate may not sign CRLs (no cRLSign)';
  try {
    return verifySignature(crl.sigAlgOid, crl.tbs, new X509Certificate(caDer).publicKey, crl.signature) ? undefined : 'its signature does not verify';
  } catch {
    return `unsupported signature algorithm ${crl.sigAlgOid}`;
  }
}

export const crlSignedBy = (crl: ParsedCrl, caDer: Buffer): boolean => crlSignatureProblem(crl, caDer) === undefined;
