// CMS SignedData "certs-only" (RFC 5652 §5, RFC 7030 §4.1.3): how EST carries certificates.
import { malformed } from '../errors.js';
import { Tag, children, ctx, decodeOid, expectTag, oid, readWhole, seq, smallInteger, tlv, whole } from './der.js';
import { OID } from './oids.js';

const EMPTY_SET = Buffer.from([0x31, 0x00]);

/** Certificates in the order given (OpenSSL and libest keep order; clients read leaf first). */
export function buildCertsOnly(certs: Uint8Array[]): Buffer {
  const signedData = seq(smallInteger(1), EMPTY_SET, seq(oid(OID.data)), tlv(0xa0, ...certs), EMPTY_SET);
  return seq(oid(OID.signedData), ctx(0, true, signedData));
}

/** The certificates of a certs-only SignedData, in encoded order. Strict DER. */
export function parseCertsOnly(der: Uint8Array): Buffer[] {
  const top = expectTag(readWhole(der, 'ContentInfo'), Tag.SEQUENCE, 'ContentInfo');
  const [typeT, explicitT] = children(der, top);
  if (decodeOid(der, typeT!) !== OID.signedData) throw malformed('PKCS#7 content is not SignedData');
  const sd = children(der, expectTag(children(der, expectTag(explicitT, 0xa0, 'content'))[0], Tag.SEQUENCE, 'SignedData'));
  const certsT = sd.find((t) => t.tag === 0xa0);
  if (!certsT) return [];
  return children(der, certsT).map((c) => {
    if (c.tag !== Tag.SEQUENCE) throw malformed('PKCS#7 holds a non-certificate entry');
    return whole(der, c);
  });
}
