// CSR Attributes (RFC 7030 §4.5.2): SEQUENCE OF (OBJECT IDENTIFIER | Attribute).
import { Tag, children, decodeOid, decodeSmallInteger, oid, readWhole, seq, setOf, whole } from './der.js';
import { expectTag } from './der.js';

export type CsrAttr = { oid: string } | { type: string; values: Buffer[] };

export function buildCsrAttrs(attrs: CsrAttr[]): Buffer {
  return seq(...attrs.map((a) => ('oid' in a ? oid(a.oid) : seq(oid(a.type), setOf(...a.values)))));
}

export function parseCsrAttrs(der: Uint8Array): CsrAttr[] {
  const top = expectTag(readWhole(der, 'CsrAttrs'), Tag.SEQUENCE, 'CsrAttrs');
  return children(der, top).map((t): CsrAttr => {
    if (t.tag === Tag.OID) return { oid: decodeOid(der, t) };
    const [typeT, valuesT] = children(der, expectTag(t, Tag.SEQUENCE, 'Attribute'));
    return { type: decodeOid(der, typeT!), values: children(der, expectTag(valuesT, Tag.SET, 'values')).map((v) => whole(der, v)) };
  });
}

/** One attribute value (a whole DER element) for people: an OID dotted, an INTEGER (RFC 9908: RSA size) in decimal, else hex. */
export function csrAttrValueText(value: Buffer): string {
  try {
    const t = readWhole(value, 'attribute value');
    if (t.tag === Tag.OID) return decodeOid(value, t);
    if (t.tag === Tag.INTEGER) return String(decodeSmallInteger(value, t));
  } catch {
    // not a well-formed OID or small INTEGER: show the bytes
  }
  return value.toString('hex');
}
