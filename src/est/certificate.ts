// The X.509 fields EST needs that node:crypto's X509Certificate does not expose
// as bytes: subject/issuer DER, SPKI, key identifiers, basicConstraints.
import { malformed } from '../errors.js';
import { Tag, children, content, decodeTime, expectTag, readWhole, whole } from './der.js';
import {
  type BasicConstraints, type Extension, type KeyUsageName, decodeBasicConstraints, decodeKeyUsage, decodeOidList,
  decodeSubjectKeyIdentifier, parseExtensions,
} from './extensions.js';
import { type GeneralName, type Rdns, parseGeneralNames, parseName } from './name.js';
import { OID } from './oids.js';

export interface CertFields {
  der: Buffer;
  tbs: Buffer;
  serial: Buffer;
  issuerDer: Buffer;
  subjectDer: Buffer;
  subject: Rdns;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Extension[];
  subjectAltNames: GeneralName[];
  basicConstraints?: BasicConstraints;
  keyUsage?: KeyUsageName[];
  extKeyUsage?: string[];
  subjectKeyId?: Buffer;
}

export function parseCertificate(der: Buffer): CertFields {
  const top = expectTag(readWhole(der, 'Certificate'), Tag.SEQUENCE, 'Certificate');
  const [tbsT] = children(der, top);
  const f = children(der, expectTag(tbsT, Tag.SEQUENCE, 'TBSCertificate'));
  let i = f[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const serial = content(der, expectTag(f[i++], Tag.INTEGER, 'serialNumber'));
  i++; // signature
  const issuerT = expectTag(f[i++], Tag.SEQUENCE, 'issuer');
  const validity = children(der, expectTag(f[i++], Tag.SEQUENCE, 'validity'));
  const subjectT = expectTag(f[i++], Tag.SEQUENCE, 'subject');
  const spkiT = expectTag(f[i++], Tag.SEQUENCE, 'subjectPublicKeyInfo');
  let extensions: Extension[] = [];
  for (; i < f.length; i++) {
    if (f[i]!.tag === 0xa3) extensions = parseExtensions(der, children(der, f[i]!)[0]!);
  }
  if (validity.length !== 2) throw malformed('invalid validity');
  const out: CertFields = {
    der,
    tbs: whole(der, tbsT!),
    serial,
    issuerDer: whole(der, issuerT),
    subjectDer: whole(der, subjectT),
    subject: parseName(der, subjectT),
    notBefore: decodeTime(der, validity[0]!),
    notAfter: decodeTime(der, validity[1]!),
    spki: whole(der, spkiT),
    extensions,
    subjectAltNames: [],
  };
  for (const ext of extensions) {
    if (ext.oid === OID.subjectAltName) out.subjectAltNames = parseGeneralNames(ext.value);
    else if (ext.oid === OID.basicConstraints) out.basicConstraints = decodeBasicConstraints(ext.value);
    else if (ext.oid === OID.keyUsage) out.keyUsage = decodeKeyUsage(ext.value);
    else if (ext.oid === OID.extKeyUsage) out.extKeyUsage = decodeOidList(ext.value, 'extKeyUsage');
    else if (ext.oid === OID.subjectKeyIdentifier) out.subjectKeyId = decodeSubjectKeyIdentifier(ext.value);
  }
  return out;
}
