// X.501 Names and X.509 GeneralNames: parse, compare, format, build.
import { isIPv4, isIPv6 } from 'node:net';
import { malformed } from '../errors.js';
import {
  Tag, type Tlv, checkAny, children, content, ctx, decodeOid, decodeString, expectTag, ia5, oid, printable, readWhole, seq, setOf,
  utf8, whole,
} from './der.js';
import { NAME_ATTR, NAME_ATTR_OID, OID } from './oids.js';

export interface NameAttribute {
  type: string; // dotted OID
  value: string;
  /** The string type it was encoded in (Tag.UTF8String, ...). */
  tag: number;
}
/** A Name as its RDNs in encoded order; each RDN is a set of attributes. */
export type Rdns = NameAttribute[][];

export function parseName(buf: Uint8Array, t: Tlv): Rdns {
  expectTag(t, Tag.SEQUENCE, 'Name');
  return children(buf, t).map((rdn) => {
    expectTag(rdn, Tag.SET, 'RelativeDistinguishedName');
    const attrs = children(buf, rdn).map((atv) => {
      const parts = children(buf, expectTag(atv, Tag.SEQUENCE, 'AttributeTypeAndValue'));
      const [type, value] = parts;
      if (!type || !value || parts.length !== 2) throw malformed('invalid AttributeTypeAndValue');
      return { type: decodeOid(buf, type), value: decodeString(buf, value), tag: value.tag };
    });
    if (attrs.length === 0) throw malformed('invalid Name: empty RDN');
    return attrs;
  });
}

export const parseNameDer = (der: Uint8Array): Rdns => parseName(der, readWhole(der, 'Name'));

/**
 * A value as RFC 4518 prepares it for matching: compatibility-normalised (NFKC),
 * case folded, insignificant space removed. RFC 5280 §7.1 allows exactly this
 * much leniency, whatever string type the value came in.
 */
export const preparedValue = (v: string): string =>
  v.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC').replace(/\s+/gu, ' ').trim();

const rdnKey = (rdn: NameAttribute[]) => rdn.map((a) => `${a.type}\u0000${preparedValue(a.value)}`).sort();

/**
 * RFC 5280 §7.1 name matching: the same RDNs in the same order, and in each RDN
 * the same attribute types and values, counted: CN=a+CN=a is not CN=a+CN=admin.
 */
export function namesEqual(a: Rdns, b: Rdns): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = rdnKey(a[i]!);
    const y = rdnKey(b[i]!);
    if (x.length !== y.length || x.some((k, j) => k !== y[j])) return false;
  }
  return true;
}

const escape4514 = (v: string) =>
  v.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');

/** RFC 4514 string form (most specific RDN first), for logs and policy messages. */
export function formatName(rdns: Rdns): string {
  return [...rdns]
    .reverse()
    .map((rdn) => rdn.map((a) => `${NAME_ATTR[a.type] ?? a.type}=${escape4514(a.value)}`).join('+'))
    .join(',');
}

export function commonNames(rdns: Rdns): string[] {
  return rdns.flat().filter((a) => a.type === OID.commonName).map((a) => a.value);
}

/**
 * Builds a Name from `[shortName, value]` pairs in encoded order (most general
 * first, as OpenSSL's `-subj /C=../O=../CN=..` does). C and serialNumber are
 * PrintableString, everything else UTF8String (RFC 5280 4.1.2.4).
 */
export function buildName(attrs: Array<[string, string]>): Buffer {
  return seq(
    ...attrs.map(([short, value]) => {
      const type = NAME_ATTR_OID[short.toUpperCase()] ?? (/^\d+(\.\d+)+$/.test(short) ? short : undefined);
      if (!type) throw malformed(`unknown name attribute ${short}`);
      const printableType = type === OID.countryName || type === OID.serialNumber || type === OID.domainComponent;
      const enc = type === OID.domainComponent || type === OID.emailAddress ? ia5(value) : printableType ? printable(value) : utf8(value);
      return setOf(seq(oid(type), enc));
    }),
  );
}

/** Parses `/C=DE/O=Plant/CN=device-1` or `CN=device-1,O=Plant` (RFC 4514 order). */
export function parseNameString(s: string): Array<[string, string]> {
  const split = (str: string, sep: string) => str.split(new RegExp(`(?<!\\\\)${sep}`)).filter((p) => p.trim() !== '');
  const pairs = (parts: string[]) =>
    parts.map((p): [string, string] => {
      const i = p.indexOf('=');
      if (i <= 0) throw malformed(`invalid name component "${p}"`);
      return [p.slice(0, i).trim(), p.slice(i + 1).trim().replace(/\\(.)/g, '$1')];
    });
  if (s.startsWith('/')) return pairs(split(s, '/'));
  return pairs(split(s, ',')).reverse();
}

// ---- GeneralNames (subjectAltName) ----

export type GeneralNameType = 'dns' | 'ip' | 'email' | 'uri' | 'dirName' | 'other' | 'registeredId';
export interface GeneralName {
  type: GeneralNameType;
  value: string;
  /** A dNSName of the form `*.rest` (a wildcard as the whole left-most label). */
  wildcard?: true;
  /** A directoryName's RDNs (its `value` is their RFC 4514 form). */
  name?: Rdns;
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) throw malformed('invalid iPAddress length');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function parseIp(s: string): Buffer {
  if (isIPv4(s)) return Buffer.from(s.split('.').map(Number));
  if (!isIPv6(s)) throw malformed(`invalid IP address ${s}`);
  let [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const parseGroups = (p: string) => {
    if (!p) return [] as number[];
    const out: number[] = [];
    for (const g of p.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parseGroups(head);
  const t = tail === undefined ? [] : parseGroups(tail);
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** `*.rest`: a wildcard as the whole left-most label, the only form RFC 6125 §6.4.3 leaves. */
export const isWildcardDns = (name: string): boolean => name.startsWith('*.');

/** otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY } (RFC 5280 §4.2.1.6), kept as hex. */
function otherName(der: Uint8Array, gn: Tlv): GeneralName {
  const [typeId, value, extra] = children(der, gn);
  decodeOid(der, typeId!);
  const inner = value?.tag === 0xa0 ? children(der, value) : [];
  if (inner.length !== 1 || extra) throw malformed('invalid otherName');
  try {
    checkAny(der, inner[0]!);
  } catch {
    throw malformed('invalid otherName: its value is not DER');
  }
  return { type: 'other', value: whole(der, gn).toString('hex') };
}

/** Parses the value of a subjectAltName extension (GeneralNames). */
export function parseGeneralNames(der: Uint8Array): GeneralName[] {
  const t = readWhole(der, 'GeneralNames');
  expectTag(t, Tag.SEQUENCE, 'GeneralNames');
  const names = children(der, t).map((gn): GeneralName => {
    const c = content(der, gn);
    switch (gn.tag) {
      case 0x81: return { type: 'email', value: c.toString('latin1') };
      case 0x82: {
        const value = c.toString('latin1');
        return isWildcardDns(value) ? { type: 'dns', value, wildcard: true } : { type: 'dns', value };
      }
      case 0x86: return { type: 'uri', value: c.toString('latin1') };
      case 0x87: return { type: 'ip', value: formatIp(c) };
      case 0x88: return { type: 'registeredId', value: decodeOid(der, { ...gn, tag: Tag.OID }) };
      case 0xa4: {
        const [inner, extra] = children(der, gn);
        if (!inner || extra) throw malformed('invalid directoryName');
        const name = parseName(der, inner);
        return { type: 'dirName', value: formatName(name), name };
      }
      case 0xa0: return otherName(der, gn);
      default: throw malformed(`unsupported GeneralName tag 0x${gn.tag.toString(16)}`);
    }
  });
  if (names.length === 0) throw malformed('invalid subjectAltName: empty');
  return names;
}

export function buildGeneralNames(names: GeneralName[]): Buffer {
  return seq(
    ...names.map((n) => {
      switch (n.type) {
        case 'email': return ctx(1, false, Buffer.from(n.value, 'latin1'));
        case 'dns': return ctx(2, false, Buffer.from(n.value, 'latin1'));
        case 'uri': return ctx(6, false, Buffer.from(n.value, 'latin1'));
        case 'ip': return ctx(7, false, parseIp(n.value));
        default: throw malformed(`cannot build GeneralName of type ${n.type}`);
      }
    }),
  );
}

export const generalNamesKey = (names: GeneralName[]): string =>
  names.map((n) => `${n.type}:${n.type === 'dns' || n.type === 'email' ? n.value.toLowerCase() : n.value}`).sort().join('\n');
