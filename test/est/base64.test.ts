import test from 'ava';
import { decodeEstBase64, encodeEstBase64 } from '../../src/est/base64.js';
import { isEstError } from '../../src/errors.js';

const der = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
const b64 = der.toString('base64');

test('encodes 64-column lines, each ending in LF, the last one too (what libest and aziot accept)', (t) => {
  const s = encodeEstBase64(der);
  const lines = s.split('\n');
  t.is(lines.pop(), '');
  t.true(lines.every((l, i) => (i < lines.length - 1 ? l.length === 64 : l.length <= 64)));
  t.deepEqual(Buffer.from(s, 'base64'), der);
});

test('RFC 8951 §3.1: tolerates CR, LF, spaces and tabs anywhere, wrapped or not', (t) => {
  const variants = [
    b64,
    b64.replace(/(.{76})/g, '$1\r\n'),
    b64.replace(/(.{64})/g, '$1\n') + '\n',
    ` \t${b64.slice(0, 10)} ${b64.slice(10, 50)}\t${b64.slice(50)}\r\n\r\n`,
    b64.replace(/=+$/, ''),
  ];
  for (const v of variants) t.deepEqual(decodeEstBase64(Buffer.from(v)), der);
});

test('accepts PEM armour, raw DER and the trailing NUL libest example server sends', (t) => {
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  t.deepEqual(decodeEstBase64(Buffer.from(pem)), der);
  t.deepEqual(decodeEstBase64(Buffer.concat([Buffer.from(b64), Buffer.from([0])])), der);
  const seq = Buffer.from([0x30, 0x82, 0x00, 0x02, 0x05, 0x00]);
  t.deepEqual(decodeEstBase64(seq), seq);
});

test('rejects what is not base64 with a malformed error naming the byte', (t) => {
  for (const bad of ['abc$def', 'ab=cd', 'abcde', '====', '', '\n\n']) {
    const e = t.throws(() => decodeEstBase64(Buffer.from(bad)));
    t.true(isEstError(e, 'malformed'), `${bad}: ${e?.message}`);
  }
});
