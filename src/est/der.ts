// Minimal strict DER reader and writer.
// The enrollment hot path parses a CSR and builds a certificate per request;
// asn1js/pkijs schema matching costs more than the signature itself there, so the
// hot path works on raw TLVs. pkijs stays the independent oracle in the tests.
import { malformed } from '../errors.js';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  TeletexString: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  UniversalString: 0x1c,
  BMPString: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One element: `tag`, and offsets of its header start, content start and end. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  if (pos + 2 > limit) throw malformed('truncated DER: element header runs past the end');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('unsupported DER: high tag number');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw malformed('invalid DER: indefinite length');
    if (n > 4) throw malformed('invalid DER: length too large');
    if (p + n > limit) throw malformed('truncated DER: length runs past the end');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80 || (n > 1 && buf[pos + 2] === 0)) throw malformed('invalid DER: non-minimal length');
  }
  const end = p + len;
  if (end > limit) throw malformed('truncated DER: content runs past the end');
  return { tag, start: pos, contentStart: p, end };
}

/** Parses `buf` as exactly one element, with nothing after it. */
export function readWhole(buf: Uint8Array, what: string): Tlv {
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) throw malformed(`invalid ${what}: trailing bytes after DER`);
  return t;
}

export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw malformed(`invalid ${what}: missing element`);
  if (t.tag !== tag) throw malformed(`invalid ${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

export const content = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.contentStart, t.end - t.contentStart);
export const whole = (buf: Uint8Array, t: Tlv): Buffer =>
  Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);

/** An identifier as a reason shows it: an OID may have any number of arcs. */
export const clip = (s: string, max = 64): string => (s.length > max ? `${s.slice(0, max)}…` : s);

export function decodeOid(buf: Uint8Array, t: Tlv): string {
  expectTag(t, Tag.OID, 'OBJECT IDENTIFIER');
  if (t.end === t.contentStart) throw malformed('invalid OID: empty');
  const parts: number[] = [];
  let v = 0;
  for (let i = t.contentStart; i < t.end; i++) {
    const b = buf[i]!;
    // X.690 §8.19.2: a subidentifier has no leading 0x80 octet; another reader would see another OID
    if (b === 0x80 && v === 0) throw malformed('invalid OID: subidentifier is not minimally encoded');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw malformed('invalid OID: arc too large');
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const first = v < 40 ? 0 : v < 80 ? 1 : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    } else if (i === t.end - 1) throw malformed('invalid OID: truncated arc');
  }
  return parts.join('.');
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A string value, decoded one-to-one: two different byte strings of one type never
 * read alike (no U+FFFD stand-ins), so what policy compares is what gets copied.
 * Which types and characters a name may use is src/est/name-syntax.ts's business.
 */
export function decodeString(buf: Uint8Array, t: Tlv): string {
  const c = content(buf, t);
  switch (t.tag) {
    case Tag.UTF8String:
      try {
        return utf8Strict.decode(c);
      } catch {
        throw malformed('invalid UTF8String: not valid UTF-8');
      }
    case Tag.PrintableString:
    case Tag.IA5String:
    case Tag.TeletexString:
      return c.toString('latin1');
    case Tag.BMPString: {
      if (c.length % 2) throw malformed('invalid BMPString');
      let s = '';
      for (let i = 0; i < c.length; i += 2) {
        const u = c.readUInt16BE(i);
        if (u >= 0xd800 && u <= 0xdfff) throw malformed('invalid BMPString: surrogate code unit');
        s += String.fromCharCode(u);
      }
      return s;
    }
    case Tag.UniversalString: {
      if (c.length % 4) throw malformed('invalid UniversalString');
      let s = '';
      for (let i = 0; i < c.length; i += 4) {
        const u = c.readUInt32BE(i);
        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) throw malformed('invalid UniversalString: not a code point');
        s += String.fromCodePoint(u);
      }
      return s;
    }
    default:
      throw malformed(`invalid string: unexpected tag 0x${t.tag.toString(16)}`);
  }
}

export function decodeTime(buf: Uint8Array, t: Tlv): Date {
  const s = content(buf, t).toString('latin1');
  let m: RegExpMatchArray | null;
  if (t.tag === Tag.UTCTime && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  if (t.tag === Tag.GeneralizedTime && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return new Date(Date.UTC(+m[1]!, Number(m[2]) - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  throw malformed('invalid time value');
}

/** A non-negative INTEGER small enough for a JS number (versions, path lengths). */
export function decodeSmallInteger(buf: Uint8Array, t: Tlv): number {
  expectTag(t, Tag.INTEGER, 'INTEGER');
  const n = t.end - t.contentStart;
  if (n < 1 || n > 6) throw malformed('invalid INTEGER: out of range');
  checkIntegerEncoding(buf, t);
  if (buf[t.contentStart]! & 0x80) throw malformed('invalid INTEGER: negative');
  let v = 0;
  for (let i = t.contentStart; i < t.end; i++) v = v * 256 + buf[i]!;
  return v;
}

/** X.690 §8.3.2: no leading octet that only repeats the sign (OpenSSL refuses such padding). */
function checkIntegerEncoding(buf: Uint8Array, t: Tlv): void {
  if (t.end === t.contentStart) throw malformed('invalid INTEGER: empty');
  if (t.end - t.contentStart === 1) return;
  const a = buf[t.contentStart]!;
  const b = buf[t.contentStart + 1]!;
  if ((a === 0 && !(b & 0x80)) || (a === 0xff && b & 0x80)) throw malformed('invalid INTEGER: not minimally encoded');
}

/**
 * A value of type ANY (an otherName's, say) in DER, as a strict generic reader
 * such as OpenSSL's takes it: constructed values element by element, the
 * universal primitive types by their content rules.
 */
export function checkAny(buf: Uint8Array, t: Tlv): void {
  if (t.tag & 0x20) {
    for (const c of children(buf, t)) checkAny(buf, c);
    return;
  }
  const n = t.end - t.contentStart;
  const first = buf[t.contentStart];
  switch (t.tag) {
    case Tag.BOOLEAN: if (n !== 1) throw malformed('invalid BOOLEAN'); break;
    case Tag.INTEGER: checkIntegerEncoding(buf, t); break;
    case Tag.NULL: if (n !== 0) throw malformed('invalid NULL'); break;
    case Tag.OID: decodeOid(buf, t); break;
    case Tag.BIT_STRING: if (first === undefined || first > 7 || (n === 1 && first !== 0)) throw malformed('invalid BIT STRING'); break;
    case Tag.UTF8String: case Tag.BMPString: case Tag.UniversalString: decodeString(buf, t); break;
    default: break;
  }
}

export function decodeBoolean(buf: Uint8Array, t: Tlv): boolean {
  expectTag(t, Tag.BOOLEAN, 'BOOLEAN');
  if (t.end - t.contentStart !== 1) throw malformed('invalid BOOLEAN');
  return buf[t.contentStart] !== 0;
}

// ---- writer ----

function header(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  if (len < 0x100) return Buffer.from([tag, 0x81, len]);
  if (len < 0x10000) return Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  if (len < 0x1000000) return Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.from([tag, 0x84, len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff]);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const h = header(tag, len);
  return Buffer.concat([h, ...parts], h.length + len);
}

export const seq = (...parts: Uint8Array[]) => tlv(Tag.SEQUENCE, ...parts);
/** DER SET OF: elements sorted by their encodings (X.690 11.6). */
export const setOf = (...parts: Uint8Array[]) => tlv(Tag.SET, ...[...parts].sort(Buffer.compare));
/** Context-specific tag `[n]`, constructed (explicit) by default. */
export const ctx = (n: number, constructed: boolean, ...parts: Uint8Array[]) =>
  tlv((constructed ? 0xa0 : 0x80) | n, ...parts);
export const octetString = (b: Uint8Array) => tlv(Tag.OCTET_STRING, b);
export const bitString = (b: Uint8Array, unusedBits = 0) => tlv(Tag.BIT_STRING, Buffer.from([unusedBits]), b);
export const utf8 = (s: string) => tlv(Tag.UTF8String, Buffer.from(s, 'utf8'));
export const printable = (s: string) => tlv(Tag.PrintableString, Buffer.from(s, 'latin1'));
export const ia5 = (s: string) => tlv(Tag.IA5String, Buffer.from(s, 'latin1'));
export const NULL = Buffer.from([0x05, 0x00]);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: number) => {
    const tmp = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift((v & 0x7f) | 0x80);
    bytes.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const out = tlv(Tag.OID, Buffer.from(bytes));
  oidCache.set(dotted, out);
  return out;
}

/** INTEGER from a non-negative big-endian magnitude. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m[0]! & 0x80 ? tlv(Tag.INTEGER, Buffer.from([0]), m) : tlv(Tag.INTEGER, m);
}

export function smallInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('smallInteger takes a non-negative integer');
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  return unsignedInteger(Buffer.from(bytes));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) + pad(d.getUTCHours()) + pad(d.getUTCMinutes()) + pad(d.getUTCSeconds()) + 'Z';
  return y < 2050
    ? tlv(Tag.UTCTime, Buffer.from(pad(y % 100) + rest, 'latin1'))
    : tlv(Tag.GeneralizedTime, Buffer.from(pad(y, 4) + rest, 'latin1'));
}
