// PKCS#10 (RFC 2986) parsing and signature check.
import { EstError, malformed } from '../errors.js';
import { Tag, children, clip, content, decodeOid, decodeSmallInteger, decodeString, expectTag, readWhole, whole } from './der.js';
import {
  type BasicConstraints, type Extension, type KeyUsageName, decodeBasicConstraints, decodeExtKeyUsage,
  decodeKeyUsage, parseExtensions,
} from './extensions.js';
import { type GeneralName, type Rdns, parseGeneralNames, parseName } from './name.js';
import { DEFAULT_NAME_LIMITS, type NameLimits, checkGeneralNames, checkName, checkStringValue } from './name-syntax.js';
import { EXTENSION_NAME, OID } from './oids.js';
import { verifySignature } from './signature.js';
import { type KeyInfo, describeSpki, publicKeyFromSpki } from './spki.js';

export interface Csr {
  der: Buffer;
  /** The signed CertificationRequestInfo, whole TLV. */
  info: Buffer;
  /** Subject Name, whole TLV, copied verbatim into the certificate. */
  subjectDer: Buffer;
  subject: Rdns;
  spki: Buffer;
  key: KeyInfo;
  signatureAlgorithm: string;
  signature: Buffer;
  challengePassword?: string;
  extensions: Extension[];
  subjectAltNames: GeneralName[];
  basicConstraints?: BasicConstraints;
  keyUsage?: KeyUsageName[];
  extKeyUsage?: string[];
}

export type CsrParseOptions = Partial<NameLimits>;

/**
 * Parses a request strictly: one reading only (each attribute and extension at
 * most once), names in their syntax (src/est/name-syntax.ts). Says nothing of
 * the signature or of policy.
 */
export function parseCsr(der: Buffer, o: CsrParseOptions = {}): Csr {
  try {
    return parseCsrUnchecked(der, { ...DEFAULT_NAME_LIMITS, ...o });
  } catch (e) {
    if (e instanceof EstError) throw malformed(`invalid PKCS#10 request: ${e.message.replace(/^invalid /, '')}`, e);
    throw malformed('invalid PKCS#10 request', e);
  }
}

/** A signature is whole octets: a BIT STRING claiming unused bits is not one (X.509 / RFC 2986). */
function signatureBits(bits: Buffer): Buffer {
  if (bits.length < 2 || bits[0] !== 0) throw malformed('signature BIT STRING must have no unused bits');
  return bits.subarray(1);
}

/** Microsoft's older extension request; OpenSSL reads it like extensionRequest, so do we, and never both. */
const MS_EXTENSION_REQUEST = '1.3.6.1.4.1.311.2.1.14';
const ATTRIBUTE_NAME: Record<string, string> = {
  [OID.challengePassword]: 'challengePassword',
  [OID.extensionRequest]: 'extensionRequest',
  [MS_EXTENSION_REQUEST]: 'extensionRequest (msExtReq)',
};
/** PKCS#9: challengePassword DirectoryString (SIZE (1..255)). */
const CHALLENGE_PASSWORD = { tags: [Tag.UTF8String, Tag.PrintableString], max: 255 };

/** Runs an extension's decoder, naming the extension in its failure. */
function decodeExtension<T>(oid: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    const name = EXTENSION_NAME[oid] ?? oid;
    const msg = e instanceof EstError ? e.message.replace(/^invalid /, '') : 'does not parse';
    throw malformed(msg.startsWith(name) ? msg : `${name}: ${msg}`, e);
  }
}

function parseCsrUnchecked(der: Buffer, limits: NameLimits): Csr {
  const top = expectTag(readWhole(der, 'CertificationRequest'), Tag.SEQUENCE, 'CertificationRequest');
  const [infoT, algT, sigT, extra] = children(der, top);
  if (extra) throw malformed('CertificationRequest has extra fields');
  const info = children(der, expectTag(infoT, Tag.SEQUENCE, 'CertificationRequestInfo'));
  const [verT, subjT, spkiT, attrsT, infoExtra] = info;
  if (infoExtra) throw malformed('CertificationRequestInfo has extra fields');
  if (decodeSmallInteger(der, verT!) !== 0) throw malformed('unsupported CSR version');
  const subject = parseName(der, expectTag(subjT, Tag.SEQUENCE, 'subject'));
  const spki = whole(der, expectTag(spkiT, Tag.SEQUENCE, 'subjectPKInfo'));
  const algParts = children(der, expectTag(algT, Tag.SEQUENCE, 'signatureAlgorithm'));
  if (algParts.length < 1 || algParts.length > 2) throw malformed('invalid signatureAlgorithm');
  const csr: Csr = {
    der,
    info: whole(der, infoT!),
    subjectDer: whole(der, subjT!),
    subject,
    spki,
    key: describeSpki(spki),
    signatureAlgorithm: decodeOid(der, algParts[0]!),
    signature: signatureBits(content(der, expectTag(sigT, Tag.BIT_STRING, 'signature'))),
    extensions: [],
    subjectAltNames: [],
  };
  // attributes are [0] IMPLICIT SET OF Attribute; some encoders omit an empty set
  if (attrsT) {
    if (attrsT.tag !== 0xa0) throw malformed('invalid attributes');
    const seen = new Set<string>();
    for (const attr of children(der, attrsT)) {
      const parts = children(der, expectTag(attr, Tag.SEQUENCE, 'Attribute'));
      const [typeT, valuesT] = parts;
      if (parts.length !== 2) throw malformed('invalid Attribute');
      const type = decodeOid(der, typeT!);
      // RFC 2986 §4.1 reads attributes as a set: one type twice gives two readings (OpenSSL takes the first)
      const key = type === MS_EXTENSION_REQUEST ? OID.extensionRequest : type;
      if (seen.has(key)) throw malformed(`duplicate attribute ${ATTRIBUTE_NAME[type] ?? clip(type)}`);
      seen.add(key);
      const values = children(der, expectTag(valuesT, Tag.SET, 'attribute values'));
      if (values.length === 0) throw malformed(`attribute ${ATTRIBUTE_NAME[type] ?? clip(type)} has no value`);
      if (type === OID.challengePassword) {
        if (values.length !== 1) throw malformed('challengePassword must have one value');
        csr.challengePassword = decodeString(der, values[0]!);
        checkStringValue('challengePassword', values[0]!.tag, csr.challengePassword, CHALLENGE_PASSWORD);
      } else if (key === OID.extensionRequest) {
        if (values.length !== 1) throw malformed('extensionRequest must have one value');
        csr.extensions = parseExtensions(der, values[0]!);
      }
    }
  }
  for (const ext of csr.extensions) {
    if (ext.oid === OID.subjectAltName) csr.subjectAltNames = decodeExtension(ext.oid, () => parseGeneralNames(ext.value));
    else if (ext.oid === OID.basicConstraints) csr.basicConstraints = decodeExtension(ext.oid, () => decodeBasicConstraints(ext.value));
    else if (ext.oid === OID.keyUsage) csr.keyUsage = decodeExtension(ext.oid, () => decodeKeyUsage(ext.value));
    else if (ext.oid === OID.extKeyUsage) csr.extKeyUsage = decodeExtension(ext.oid, () => decodeExtKeyUsage(ext.value));
  }
  checkName(csr.subject, limits);
  checkGeneralNames(csr.subjectAltNames, limits);
  return csr;
}

/** Proof that the requester holds the private key (RFC 2986 §3). */
export function verifyCsr(csr: Csr): boolean {
  let key;
  try {
    key = publicKeyFromSpki(csr.spki, csr.key);
  } catch {
    throw malformed('invalid PKCS#10 request: unusable public key');
  }
  return verifySignature(csr.signatureAlgorithm, csr.info, key, csr.signature);
}
