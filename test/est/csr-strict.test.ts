// The codec's strict reading, one rule at a time, without a server: OIDs
// (X.690 §8.19.2), one-to-one string decoding, RFC 5280 §7.1 name matching,
// the RSA exponent in describeSpki, and the GeneralName syntaxes.
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { attribute, rawCsr, rawName } from '../helpers/csr-raw.js';
import { isEstError } from '../../src/errors.js';
import { Tag, decodeOid, decodeString, oid, readWhole, tlv, utf8 } from '../../src/est/der.js';
import { type GeneralName, type Rdns, namesEqual, parseGeneralNames, parseNameDer } from '../../src/est/name.js';
import { parseCsr } from '../../src/est/csr.js';
import { checkGeneralNames, quote } from '../../src/est/name-syntax.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';

const malformedError = { is: (e: unknown) => isEstError(e, 'malformed') } as const;
const oidOf = (...octets: number[]) => {
  const der = tlv(Tag.OID, Buffer.from(octets));
  return decodeOid(der, readWhole(der, 'OID'));
};

test('OIDs: a 0x80 leading octet in any subidentifier is refused; 0x80 inside a subidentifier is fine', (t) => {
  t.is(oidOf(0x55, 0x04, 0x03), '2.5.4.3');
  t.is(oidOf(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d), '1.2.840.113549');
  t.is(oidOf(0x2a, 0x81, 0x80, 0x00), '1.2.16384');
  for (const octets of [[0x80, 0x55], [0x55, 0x80, 0x04], [0x55, 0x04, 0x80, 0x80, 0x03]]) {
    const e = t.throws(() => oidOf(...octets));
    t.true(malformedError.is(e), String(e));
    t.regex(e!.message, /not minimally encoded/);
  }
  const der = oid('1.3.6.1.4.1.311.2.1.14');
  t.is(decodeOid(der, readWhole(der, 'OID')), '1.3.6.1.4.1.311.2.1.14');
});

test('strings decode one-to-one: invalid UTF-8 and lone surrogates are refused, not replaced by U+FFFD', (t) => {
  const read = (tag: number, bytes: number[]) => {
    const der = tlv(tag, Buffer.from(bytes));
    return decodeString(der, readWhole(der, 'string'));
  };
  t.is(read(Tag.UTF8String, [0xe2, 0x82, 0xac]), '\u20ac');
  t.throws(() => read(Tag.UTF8String, [0x61, 0xff]), { message: /UTF-8/ });
  t.throws(() => read(Tag.UTF8String, [0xc0, 0x80]), { message: /UTF-8/ }, 'overlong NUL');
  t.throws(() => read(Tag.UTF8String, [0xed, 0xa0, 0x80]), { message: /UTF-8/ }, 'encoded surrogate');
  t.throws(() => read(Tag.BMPString, [0xd8, 0x00]), { message: /BMPString/ });
  t.throws(() => read(Tag.UniversalString, [0x00, 0x11, 0x00, 0x00]), { message: /UniversalString/ });
  // byte strings of one type read as distinct strings: latin1 for the 8-bit types
  t.not(read(Tag.PrintableString, [0xc3, 0xa9]), read(Tag.PrintableString, [0xe9]));
});

const name = (...rdns: Array<Array<[string, string]>>): Rdns => rdns.map((rdn) => rdn.map(([type, value]) => ({ type, value, tag: Tag.UTF8String })));
const CN = OID.commonName;
const O = OID.organizationName;

test('namesEqual is RFC 5280 §7.1 matching: multisets per RDN, RDN order and count kept', (t) => {
  t.false(namesEqual(name([[CN, 'a'], [CN, 'a']]), name([[CN, 'a'], [CN, 'admin']])), 'CN=a+CN=a vs CN=a+CN=admin');
  t.false(namesEqual(name([[CN, 'a'], [CN, 'admin']]), name([[CN, 'a'], [CN, 'a']])));
  t.false(namesEqual(name([[CN, 'a'], [CN, 'b']]), name([[CN, 'a']])));
  t.false(namesEqual(name([[O, 'p']], [[CN, 'x']]), name([[CN, 'x']], [[O, 'p']])), 'RDN order');
  t.false(namesEqual(name([[O, 'p'], [CN, 'x']]), name([[O, 'p']], [[CN, 'x']])), 'one RDN is not two');
  t.false(namesEqual(name([[CN, 'x']]), name([[O, 'x']])), 'type');
  t.true(namesEqual(name([[CN, 'x'], [O, 'p']]), name([[O, 'p'], [CN, 'x']])), 'order inside an RDN');
  t.true(namesEqual(name([[CN, '  Press   7 ']]), name([[CN, 'press 7']])), 'case and insignificant space');
  t.true(namesEqual(name([[CN, 'Stra\u00dfe']]), name([[CN, 'STRASSE']])), 'case folding');
  t.true(namesEqual(name([[CN, '\uff21']]), name([[CN, 'a']])), 'NFKC');
  t.true(namesEqual([], []));
  const printable = [[{ type: CN, value: 'X', tag: Tag.PrintableString }]];
  t.true(namesEqual(printable, name([[CN, 'x']])), 'string type');
});

test('the field peers\' subjects still compare equal to themselves after a round trip', (t) => {
  const der = Buffer.from('301a3118301606035504030c0f6c69626573742d636c69656e742d31', 'hex');
  t.true(namesEqual(parseNameDer(der), parseNameDer(der)));
});

test('describeSpki reads the RSA exponent from the DER (3, 65537); EC and Ed25519 have none', (t) => {
  for (const e of [3, 65537]) {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: e });
    t.deepEqual(describeSpki(publicKey.export({ format: 'der', type: 'spki' })), { type: 'rsa', bits: 2048, exponent: BigInt(e) });
  }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' });
  t.deepEqual(describeSpki(ec), { type: 'p384', bits: 384 });
  const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  t.deepEqual(describeSpki(ed), { type: 'ed25519', bits: 256 });
});

const gn = (type: GeneralName['type'], value: string): GeneralName => ({ type, value });
const ok = (n: GeneralName) => checkGeneralNames([n]);
const bad = (t: import('ava').ExecutionContext, n: GeneralName, reason: RegExp) => {
  const e = t.throws(() => ok(n), undefined, `${n.type}:${JSON.stringify(n.value)}`);
  if (e) t.regex(e.message, reason);
};

test('dNSName: preferred name syntax, wildcards only as the whole left-most label', (t) => {
  for (const v of ['a', 'a.b', 'xn--bcher-kva.example', '1.2.3.4', 'a-b.c', `${'a'.repeat(63)}.b`, '*.plant.local', `${'a.'.repeat(126)}a`]) t.notThrows(() => ok(gn('dns', v)), v);
  bad(t, gn('dns', `${'a.'.repeat(126)}ab`), /253/);
  bad(t, gn('dns', 'a_b.c'), /"_"/);
  bad(t, gn('dns', 'a\u0000'), /"\\u0000"/);
  bad(t, gn('dns', 'x.*'), /wildcard/);
  bad(t, gn('dns', '**.a'), /wildcard/);
  bad(t, gn('dns', '*.'), /empty|dot/);
  bad(t, gn('dns', 'a.-b'), /hyphen/);
});

test('parseGeneralNames marks *.plant.local as a wildcard and nothing else', (t) => {
  const san = (v: string) => tlv(Tag.SEQUENCE, tlv(0x82, Buffer.from(v)));
  t.deepEqual(parseGeneralNames(san('*.plant.local')), [{ type: 'dns', value: '*.plant.local', wildcard: true }]);
  t.deepEqual(parseGeneralNames(san('a.plant.local')), [{ type: 'dns', value: 'a.plant.local' }]);
});

test('rfc822Name and URI syntax', (t) => {
  for (const v of ['a@b', 'a.b+c@d-e.f', "!#$%&'*+/=?^_`{|}~-@x"]) t.notThrows(() => ok(gn('email', v)), v);
  bad(t, gn('email', `${'l'.repeat(65)}@x`), /local part longer than 64/);
  bad(t, gn('email', 'a..b@x'), /dot-atom/);
  for (const v of ['urn:x', 'spiffe://td/p', 'https://h:1/', 'https://[::1]/', 'mailto:a@b', 'https://u:p@h.example/']) t.notThrows(() => ok(gn('uri', v)), v);
  bad(t, gn('uri', 'https://h:x/'), /port/);
  t.notThrows(() => ok(gn('uri', 'https://h:/')), 'RFC 3986 §3.2.3: an empty port is allowed');
  bad(t, gn('uri', 'https://[::1/'), /IPv6/);
  bad(t, gn('uri', 'https://h/"x"'), /characters/);
});

test('quote: control characters escaped, at most 64 characters then …, quotes escaped', (t) => {
  t.is(quote('a\u0000b\u009b"'), '"a\\u0000b\\u009b\\""');
  t.is(quote('x'.repeat(65)), `"${'x'.repeat(64)}…"`);
  t.is(quote('\u{1f600}'.repeat(64)), `"${'\u{1f600}'.repeat(64)}"`, 'characters, not UTF-16 units');
});

test('reasons stay short when the offender is an OID of hundreds of arcs (attribute type, name attribute type)', (t) => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const long = `1.3.6.1.4.1.${Array.from({ length: 300 }, (_, i) => i + 1).join('.')}`;
  const dupAttr = rawCsr({ key, subject: rawName([[OID.commonName, utf8('x')]]), attributes: [attribute(long, utf8('a')), attribute(long, utf8('b'))] });
  const badValue = rawCsr({ key, subject: rawName([[long, tlv(Tag.BMPString, Buffer.from([0, 0x61]))]]) });
  for (const der of [dupAttr.der, badValue.der]) {
    const e = t.throws(() => parseCsr(der));
    t.true(e!.message.length < 150, e!.message);
    t.regex(e!.message, /1\.3\.6\.1\.4\.1\.1\.2\.3.*…/);
  }
});
