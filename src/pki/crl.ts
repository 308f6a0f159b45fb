// Certificate revocation lists (RFC 5280 §5): version 2, signed by the CA that
// issued the certificates, with authorityKeyIdentifier, cRLNumber and a
// reasonCode on every entry whose reason is not `unspecified`.
import { sign as nodeSign } from 'node:crypto';
import { bitString, ctx, oid, seq, smallInteger, tlv, time, unsignedInteger } from '../est/der.js';
import { encodeAuthorityKeyIdentifier, extension } from '../est/extensions.js';
import { OID } from '../est/oids.js';
import { signatureAlgorithmFor } from '../est/signature.js';
import { caKeyIdentifier } from '../est/spki.js';
import type { CaMaterial } from './ca.js';

/** RFC 5280 §5.3.1 CRLReason; 7 is unused, removeFromCRL (8) and aACompromise (10) do not apply here. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;
export const isRevocationReason = (s: string): s is RevocationReason => Object.hasOwn(REVOCATION_REASONS, s);

export interface CrlEntry {
  serialHex: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlContents {
  /** cRLNumber: strictly increasing for this CA. */
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

const V2 = Buffer.from([0x02, 0x01, 0x01]);
const ENUMERATED = 0x0a;

export function buildCrl(ca: CaMaterial, c: CrlContents): Buffer {
  const alg = signatureAlgorithmFor(ca.key);
  const revoked = c.entries.map((e) => {
    const code = REVOCATION_REASONS[e.reason];
    // §5.3.1: the reason code unspecified SHOULD be absent rather than present
    const exts = code === 0 ? [] : [seq(extension(OID.cRLReason, false, tlv(ENUMERATED, Buffer.from([code]))))];
    return seq(unsignedInteger(Buffer.from(e.serialHex.length % 2 ? `0${e.serialHex}` : e.serialHex, 'hex')), time(e.revokedAt), ...exts);
  });
  const tbs = seq(
    V2,
    alg.der,
    ca.fields.subjectDer,
    time(c.thisUpdate),
    time(c.nextUpdate),
    // §5.1.2.6: absent, not empty, when nothing is revoked
    ...(revoked.length ? [seq(...revoked)] : []),
    ctx(0, true, seq(
      extension(OID.authorityKeyIdentifier, false, encodeAuthorityKeyIdentifier(caKeyIdentifier(ca.fields))),
      extension(OID.cRLNumber, false, smallInteger(c.number)),
    )),
  );
  return seq(tbs, alg.der, bitString(nodeSign(alg.digest, tbs, ca.key)));
}

/** authorityInfoAccess with one id-ad-ocsp URI (RFC 5280 §4.2.2.1): where relying parties ask OCSP. */
export function ocspAuthorityInfoAccess(url: string): Buffer {
  // AccessDescription { accessMethod id-ad-ocsp, accessLocation uniformResourceIdentifier [6] }
  return extension(OID.authorityInfoAccess, false, seq(seq(oid(OID.adOcsp), tlv(0x86, Buffer.from(url, 'latin1')))));
}

/** cRLDistributionPoints with one fullName URI (RFC 5280 §4.2.1.13), as every issued certificate carries it. */
export function crlDistributionPoint(url: string): Buffer {
  // DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
  return extension(OID.cRLDistributionPoints, false, seq(seq(ctx(0, true, ctx(0, true, tlv(0x86, Buffer.from(url, 'latin1')))))));
}
