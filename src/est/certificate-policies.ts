// RFC 5280 §4.2.1.4 certificatePolicies, reduced to what est-gateway writes:
// policy identifiers without qualifiers. Read leniently (qualifiers skipped).
import { Tag, children, decodeOid, expectTag, oid, readWhole, seq } from './der.js';

export const CERTIFICATE_POLICIES = '2.5.29.32';

export function encodeCertificatePolicies(oids: string[]): Buffer {
  return seq(...oids.map((o) => seq(oid(o))));
}

export function decodeCertificatePolicies(der: Uint8Array): string[] {
  const t = expectTag(readWhole(der, 'certificatePolicies'), Tag.SEQUENCE, 'certificatePolicies');
  return children(der, t).map((p) => decodeOid(der, children(der, expectTag(p, Tag.SEQUENCE, 'PolicyInformation'))[0]!));
}
