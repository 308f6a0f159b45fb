// EST transfer encoding (RFC 7030 §4 as corrected by RFC 8951 §3.1).
import { malformed } from '../errors.js';

// 1 = base64 alphabet, 2 = white space RFC 8951 says to tolerate, 0 = anything else
const CLASS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') CLASS[c.charCodeAt(0)] = 1;
for (const c of ' \t\r\n') CLASS[c.charCodeAt(0)] = 2;

/**
 * Decodes an EST body: base64 with any CR, LF, space or tab anywhere, with or
 * without padding; also PEM armour (what people paste) and trailing NUL bytes
 * (libest's example server ends csrattrs with one). `Content-Transfer-Encoding`
 * is ignored, as RFC 8951 says.
 */
export function decodeEstBase64(body: Uint8Array, what = 'body'): Buffer {
  // Raw DER (some hand-rolled clients send it): SEQUENCE tag then a byte no base64 text has.
  if (body[0] === 0x30 && body.length > 1 && CLASS[body[1]!] === 0 && body[1] !== 0x3d) return Buffer.from(body);
  let end = body.length;
  while (end > 0 && body[end - 1] === 0) end--;
  const start = 0;
  if (end - start >= 10 && body[0] === 0x2d /* '-' */) {
    const text = Buffer.from(body.subarray(0, end)).toString('latin1');
    const m = /^-----BEGIN ([A-Z0-9 #]+)-----\r?\n([\s\S]*?)-----END \1-----\s*$/.exec(text);
    if (!m) throw malformed(`${what} is neither base64 nor a single PEM block`);
    return decodeEstBase64(Buffer.from(m[2]!.replace(/^[A-Za-z-]+:.*$/gm, ''), 'latin1'), what);
  }
  const clean = Buffer.allocUnsafe(end - start);
  let n = 0;
  let pad = 0;
  for (let i = start; i < end; i++) {
    const b = body[i]!;
    const cls = CLASS[b];
    if (cls === 1) {
      if (pad) throw malformed(`${what} is not valid base64: data after padding`);
      clean[n++] = b;
    } else if (b === 0x3d /* '=' */) {
      if (++pad > 2) throw malformed(`${what} is not valid base64: too much padding`);
    } else if (cls !== 2) {
      throw malformed(`${what} is not valid base64 (byte 0x${b.toString(16).padStart(2, '0')} at offset ${i})`);
    }
  }
  if (n === 0) throw malformed(`${what} is empty`);
  if (n % 4 === 1) throw malformed(`${what} is not valid base64: truncated`);
  if (pad && (n + pad) % 4 !== 0) throw malformed(`${what} is not valid base64: wrong padding`);
  return Buffer.from(clean.toString('latin1', 0, n), 'base64');
}

/** What every peer accepts: 64-column lines, each ending in LF, including the last. */
export function encodeEstBase64(der: Uint8Array, eol = '\n'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let out = '';
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + eol;
  return out;
}

export function toPem(label: string, der: Uint8Array): string {
  return `-----BEGIN ${label}-----\n${encodeEstBase64(der)}-----END ${label}-----\n`;
}

/** Every PEM block with the given label, in order. */
export function fromPemAll(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
