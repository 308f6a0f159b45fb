// What /csrattrs says for a label: its policy, in the form RFC 7030 §4.5.2 as
// clarified by RFC 9908 §3.2 gives it. A key type is an Attribute whose type is
// the key's OID and whose value is its parameter (a curve OID, an RSA size as an
// INTEGER); a signature algorithm is a bare OID.
import type { LabelConfig } from '../config/schema.js';
import { encodeEstBase64 } from '../est/base64.js';
import { type CsrAttr, buildCsrAttrs } from '../est/csrattrs.js';
import { oid, smallInteger } from '../est/der.js';
import { OID } from '../est/oids.js';

// the curve and the ECDSA hash of the same strength (RFC 5480 §4), as our own client signs
const EC: Record<string, { curve: string; signature: string }> = {
  p256: { curve: OID.secp256r1, signature: OID.ecdsaWithSHA256 },
  p384: { curve: OID.secp384r1, signature: OID.ecdsaWithSHA384 },
  p521: { curve: OID.secp521r1, signature: OID.ecdsaWithSHA512 },
};

/**
 * challengePassword first when PoP linking is required (§3.5), then each key
 * family in key_types order with its signature algorithm(s), then csr_attributes.
 * RFC 9908 expects one key-type attribute; a label that accepts several families
 * lists one per family, so a client that takes the first still gets what the label prefers.
 */
export function policyCsrAttrs(cfg: Pick<LabelConfig, 'require_pop' | 'key_types' | 'rsa_min_bits' | 'csr_attributes'>): CsrAttr[] {
  const out: CsrAttr[] = cfg.require_pop ? [{ oid: OID.challengePassword }] : [];
  const curves = cfg.key_types.flatMap((k) => EC[k] ?? []);
  for (const k of cfg.key_types) {
    if (k === 'rsa') out.push({ type: OID.rsaEncryption, values: [smallInteger(cfg.rsa_min_bits)] }, { oid: OID.sha256WithRSAEncryption });
    // the key's OID is also its signature algorithm (RFC 8410 §3)
    else if (k === 'ed25519') out.push({ oid: OID.ed25519 });
    // all curves in one attribute, where the first of them stands in key_types
    else if (EC[k] === curves[0]) out.push({ type: OID.ecPublicKey, values: curves.map((c) => oid(c.curve)) }, ...curves.map((c) => ({ oid: c.signature })));
  }
  return [...out, ...cfg.csr_attributes.map((o) => ({ oid: o }))];
}

/** The precomputed body, or undefined for 204 (csrattrs = "none"). */
export function csrAttrsBody(cfg: LabelConfig): string | undefined {
  return cfg.csrattrs === 'none' ? undefined : encodeEstBase64(buildCsrAttrs(policyCsrAttrs(cfg)));
}
