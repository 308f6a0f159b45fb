// The edge client's reader of the CRLs its gateway serves (RFC 5280 §5): only
// what a revocation answer needs, strictly (bad DER throws `malformed`, never
// anything else). To be unified with the codec in src/est/crl.ts.
import { X509Certificate } from 'node:crypto';
import { malformed } from '../errors.js';
import { Tag, type Tlv, children, content, decodeOid, decodeSmallInteger, decodeTime, expectTag, readWhole, whole } from '../est/der.js';
import { parseCertificate } from '../est/certificate.js';
import { parseExtensions } from '../est/extensions.js';
import { namesEqual, parseNameDer } from '../est/name.js';
import { OID } from '../est/oids.js';
import { verifySignature } from '../est/signature.js';
import { keyIdentifier } from '../est/spki.js';

/** RFC 5280 §5.3.1 CRLReason by code (7 is unused). */
const REASONS: Record<number, string> = {
  0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged', 4: 'superseded', 5: 'cessationOfOperation',
  6: 'certificateHold', 8: 'removeFromCRL', 9: 'privilegeWithdrawn', 10: 'aACompromise',
};
const ENUMERATED = 0x0a;

export interface CrlRevokedEntry {
  revokedAt: Date;
  reason: string;
}

export interface ClientCrl {
  der: Buffer;
  tbs: Buffer;
  sigAlg: string;
  signature: Buffer;
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  number: number;
  authorityKeyId?: Buffer;
  /** By serial, hex as X.509 tools print it (lower case, no leading zero bytes). */
  revoked: Map<string, CrlRevokedEntry>;
}

/** Serials compared as X.509 tools print them: lower-case hex without the sign's leading zero bytes. */
export const normalSerial = (hex: string): string => hex.toLowerCase().replace(/^(00)+(?=.)/, '');
export const serialKey = (magnitude: Buffer): string => normalSerial(magnitude.toString('hex'));

const isTime = (t: Tlv | undefined) => t?.tag === Tag.UTCTime || t?.tag === Tag.GeneralizedTime;

function entryReason(der: Buffer, t: Tlv | undefined): string {
  if (!t) return 'unspecified';
  for (const e of parseExtensions(der, t)) {
    if (e.oid !== OID.cRLReason) continue;
    const v = readWhole(e.value, 'CRLReason');
    if (v.tag !== ENUMERATED || v.end - v.contentStart !== 1) throw malformed('invalid CRL: bad reasonCode');
    const name = REASONS[e.value[v.contentStart]!];
    if (!name) throw malformed('invalid CRL: unknown reasonCode');
    return name;
  }
  return 'unspecified';
}

/** A version 2 CRL with nextUpdate and cRLNumber, as our gateways sign them; anything else is `malformed`. */
export function parseClientCrl(der: Buffer): ClientCrl {
  const top = children(der, expectTag(readWhole(der, 'CRL'), Tag.SEQUENCE, 'CertificateList'));
  if (top.length !== 3) throw malformed('invalid CRL: CertificateList has not three fields');
  const [tbsT, algT, sigT] = top as [Tlv, Tlv, Tlv];
  const f = children(der, expectTag(tbsT, Tag.SEQUENCE, 'TBSCertList'));
  let i = 0;
  if (f[i]?.tag !== Tag.INTEGER || decodeSmallInteger(der, f[i]!) !== 1) throw malformed('invalid CRL: not version 2');
  i++;
  const innerAlg = expectTag(f[i++], Tag.SEQUENCE, 'CRL signature');
  if (!whole(der, innerAlg).equals(whole(der, expectTag(algT, Tag.SEQUENCE, 'CRL signatureAlgorithm')))) throw malformed('invalid CRL: the two signature algorithms differ');
  const sigAlg = decodeOid(der, children(der, algT)[0]!);
  const issuerT = expectTag(f[i++], Tag.SEQUENCE, 'CRL issuer');
  if (!isTime(f[i])) throw malformed('invalid CRL: thisUpdate missing');
  const thisUpdate = decodeTime(der, f[i++]!);
  if (!isTime(f[i])) throw malformed('invalid CRL: no nextUpdate');
  const nextUpdate = decodeTime(der, f[i++]!);
  const revoked = new Map<string, CrlRevokedEntry>();
  if (f[i]?.tag === Tag.SEQUENCE) {
    for (const e of children(der, f[i++]!)) {
      const p = children(der, expectTag(e, Tag.SEQUENCE, 'revokedCertificate'));
      if (p.length < 2 || p.length > 3) throw malformed('invalid CRL: bad revokedCertificate');
      expectTag(p[0], Tag.INTEGER, 'userCertificate');
      const serial = serialKey(content(der, p[0]!));
      if (!isTime(p[1])) throw malformed('invalid CRL: bad revocationDate');
      revoked.set(serial, { revokedAt: decodeTime(der, p[1]!), reason: entryReason(der, p[2]) });
    }
  }
  let number: number | undefined;
  let authorityKeyId: Buffer | undefined;
  if (f[i]?.tag === 0xa0) {
    const inner = children(der, f[i++]!);
    if (inner.length !== 1) throw malformed('invalid CRL: bad crlExtensions');
    for (const e of parseExtensions(der, inner[0]!)) {
      if (e.oid === OID.cRLNumber) number = decodeSmallInteger(e.value, readWhole(e.value, 'cRLNumber'));
      else if (e.oid === OID.authorityKeyIdentifier) {
        const aki = readWhole(e.value, 'authorityKeyIdentifier');
        const id = children(e.value, expectTag(aki, Tag.SEQUENCE, 'authorityKeyIdentifier')).find((c) => c.tag === 0x80);
        if (id) authorityKeyId = content(e.value, id);
      } else if (e.critical) throw malformed(`invalid CRL: unknown critical extension ${e.oid}`);
    }
  }
  if (i !== f.length) throw malformed('invalid CRL: unexpected fields');
  if (number === undefined) throw malformed('invalid CRL: no cRLNumber');
  const bits = content(der, expectTag(sigT, Tag.BIT_STRING, 'CRL signatureValue'));
  if (bits.length < 2 || bits[0] !== 0) throw malformed('invalid CRL: bad signature BIT STRING');
  return {
    der, tbs: whole(der, tbsT), sigAlg, signature: bits.subarray(1), issuerDer: whole(der, issuerT), thisUpdate, nextUpdate, number,
    ...(authorityKeyId ? { authorityKeyId } : {}), revoked,
  };
}

/** The CA's key identifier as our gateways name it in GET /crl/: subjectKeyIdentifier, or the SHA-1 of the key. */
export function caKeyId(caDer: Buffer): string {
  const f = parseCertificate(caDer);
  return (f.subjectKeyId ?? keyIdentifier(f.spki)).toString('hex');
}

/** Why `crl` was not signed by the CA certificate `caDer`, or undefined when it was (RFC 5280 §6.3.3 (f), (g)). */
export function crlSignatureProblem(crl: ClientCrl, caDer: Buffer): string | undefined {
  const ca = parseCertificate(caDer);
  if (!namesEqual(parseNameDer(crl.issuerDer), ca.subject)) return 'its issuer is not the CA certificate';
  const keyId = ca.subjectKeyId ?? keyIdentifier(ca.spki);
  if (crl.authorityKeyId && !crl.authorityKeyId.equals(keyId)) return 'it was signed by another key of the CA';
  if (ca.keyUsage && !ca.keyUsage.includes('cRLSign')) return 'the CA certificate may not sign CRLs (no cRLSign)';
  let ok: boolean;
  try {
    ok = verifySignature(crl.sigAlg, crl.tbs, new X509Certificate(caDer).publicKey, crl.signature);
  } catch {
    return `unsupported signature algorithm ${crl.sigAlg}`;
  }
  return ok ? undefined : 'its signature does not verify';
}
