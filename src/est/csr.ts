// PKCS#10 (RFC 2986) parsing and signature check.
import { EstError, malformed } from '../errors.js';
import { Tag, children, content, decodeOid, decodeSmallInteger, decodeString, expectTag, readWhole, whole } from './der.js';
import {
  type BasicConstraints, type Extension, type KeyUsageName, decodeBasicConstraints, decodeKeyUsage, decodeOidList,
  parseExtensions,
} from './extensions.js';
import { type GeneralName, type Rdns, parseGeneralNames, parseName } from './name.js';
import { OID } from './oids.js';
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

export function parseCsr(der: Buffer): Csr {
  try {
    return parseCsrUnchecked(der);
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

function parseCsrUnchecked(der: Buffer): Csr {
  const top = expectTag(readWhole(der, 'CertificationRequest'), Tag.SEQUENCE, 'CertificationRequest');
  const [infoT, algT, sigT, extra] = children(der, top);
  if (extra) throw malformed('CertificationRequest has extra fields');
  const info = children(der, expectTag(infoT, Tag.SEQUENCE, 'CertificationRequestInfo'));
  const [verT, subjT, spkiT, attrsT] = info;
  if (decodeSmallInteger(der, verT!) !== 0) throw malformed('unsupported CSR version');
  const subject = parseName(der, expectTag(subjT, Tag.SEQUENCE, 'subject'));
  const spki = whole(der, expectTag(spkiT, Tag.SEQUENCE, 'subjectPKInfo'));
  const csr: Csr = {
    der,
    info: whole(der, infoT!),
    subjectDer: whole(der, subjT!),
    subject,
    spki,
    key: describeSpki(spki),
    signatureAlgorithm: decodeOid(der, children(der, expectTag(algT, Tag.SEQUENCE, 'signatureAlgorithm'))[0]!),
    signature: signatureBits(content(der, expectTag(sigT, Tag.BIT_STRING, 'signature'))),
    extensions: [],
    subjectAltNames: [],
  };
  // attributes are [0] IMPLICIT SET OF Attribute; some encoders omit an empty set
  if (attrsT) {
    if (attrsT.tag !== 0xa0) throw malformed('invalid attributes');
    for (const attr of children(der, attrsT)) {
      const [typeT, valuesT] = children(der, expectTag(attr, Tag.SEQUENCE, 'Attribute'));
      const type = decodeOid(der, typeT!);
      const values = children(der, expectTag(valuesT, Tag.SET, 'attribute values'));
      if (type === OID.challengePassword) {
        if (values.length !== 1) throw malformed('challengePassword must have one value');
        csr.challengePassword = decodeString(der, values[0]!);
      } else if (type === OID.extensionRequest) {
        if (values.length !== 1) throw malformed('extensionRequest must have one value');
        csr.extensions = parseExtensions(der, values[0]!);
      }
    }
  }
  for (const ext of csr.extensions) {
    if (ext.oid === OID.subjectAltName) csr.subjectAltNames = parseGeneralNames(ext.value);
    else if (ext.oid === OID.basicConstraints) csr.basicConstraints = decodeBasicConstraints(ext.value);
    else if (ext.oid === OID.keyUsage) csr.keyUsage = decodeKeyUsage(ext.value);
    else if (ext.oid === OID.extKeyUsage) csr.extKeyUsage = decodeOidList(ext.value, 'extKeyUsage');
  }
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
