// Names are judged when the CSR is decoded, through a real gateway: SAN values in
// their RFC 5280 §4.2.1.6 syntaxes, subject values as conforming DirectoryStrings
// (RFC 5280 §4.1.2.4, Appendix A bounds), OIDs minimally encoded (X.690 §8.19.2).
// A grant's glob `*` matches anything, so syntax is the only thing between a
// hostile byte string and the certificate it is copied into.
import test, { type ExecutionContext } from 'ava';
import type { KeyObject } from 'node:crypto';
import { parseCertificate } from '../../src/est/certificate.js';
import { Tag, ctx, ia5, printable, seq, tlv, utf8 } from '../../src/est/der.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { generateKey } from '../../src/pki/keys.js';
import { type RawExtension, extensionRequest, rawCsr, rawName, rawOid } from '../helpers/csr-raw.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let key: KeyObject;
test.before(async () => {
  gw = await startTestGateway({
    labels: {
      default: {},
      longnames: { max_name_length: 128 },
      shortnames: { max_name_length: 8 },
      wild: { grants: [{ identity: '*', common_names: ['*'], dns_names: ['*.plant.local'], allow_wildcard: true }] },
    },
  });
  key = await generateKey('p256');
});
test.after.always(async () => gw?.close());

test.after('nothing was answered 5xx', (t) => {
  t.deepEqual(gw.audit().filter((l) => Number(l.status) >= 500), []);
});

const cn = (v: string) => buildName([['CN', v]]);
/** A SAN extension of raw GeneralNames: [tag, content]. */
const san = (...names: Array<[number, Buffer | string]>): RawExtension => ({
  oid: OID.subjectAltName,
  value: seq(...names.map(([tag, c]) => tlv(tag, typeof c === 'string' ? Buffer.from(c, 'latin1') : c))),
});
const DNS = 0x82;
const EMAIL = 0x81;
const URI = 0x86;
const IP = 0x87;
const withSan = (...names: Array<[number, Buffer | string]>) => rawCsr({ key, subject: cn('names'), attributes: [extensionRequest(san(...names))] });
const withSubject = (subject: Buffer) => rawCsr({ key, subject });

/** A 4xx whose reason is short and holds no raw control character. */
async function refused(t: ExecutionContext, csr: { b64: string }, status: number, reason: RegExp, label?: string) {
  const res = await enroll(gw, csr.b64, label ? { label } : {});
  assertReason(t, res, status, reason);
  const text = res.body.toString('utf8');
  t.true(text.length <= 200, `short reason: ${text}`);
  t.false(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), `no raw control characters: ${JSON.stringify(text)}`);
}

// ---- dNSName: RFC 5280 §4.2.1.6 preferred name syntax (RFC 1034 §3.5, RFC 1123 §2.1) ----

const badDns: Array<[string, string]> = [
  ['a NUL byte', 'a\0.plant.local'],
  ['a space', 'a b.plant.local'],
  ['a slash', 'a/b.plant.local'],
  ['an @', 'user@plant.local'],
  ['an empty first label', '.plant.local'],
  ['an empty label inside', 'a..plant.local'],
  ['a trailing dot', 'plant.local.'],
  ['a leading hyphen', '-a.plant.local'],
  ['a trailing hyphen', 'a-.plant.local'],
  ['an underscore', '_mqtt.plant.local'],
  ['a label of 64 letters', `${'a'.repeat(64)}.plant.local`],
  ['254 characters', `${'abcdefghi.'.repeat(25)}abcd`],
  ['a U-label (IDNA needs the xn-- A-label)', 'bücher.plant.local'],
  ['a wildcard that is not the whole left-most label', 'dev*.plant.local'],
  ['a wildcard below the left-most label', 'a.*.plant.local'],
  ['two wildcards', '*.*.plant.local'],
  ['a lone *', '*'],
  ['nothing at all', ''],
];
for (const [what, value] of badDns) {
  test(`a dNSName with ${what} is 400`, async (t) => {
    await refused(t, withSan([DNS, value]), 400, /dNSName/);
  });
}

test('dNSNames in preferred syntax are issued: digits, hyphens, upper case, an IDNA A-label, 63-letter labels', async (t) => {
  const ok = ['xn--bcher-kva.plant.local', 'Line-7.Cell-02.plant.local', '10-0-0-1.plant.local', `${'a'.repeat(63)}.plant.local`, 'localhost'];
  const cert = issuedCert(t, await enroll(gw, withSan(...ok.map((v): [number, string] => [DNS, v])).b64));
  t.is(cert.subjectAltName, ok.map((v) => `DNS:${v}`).join(', '));
});

test('a wildcard dNSName (*.plant.local) is recognised but refused by default: 403, though the grant\'s * matches it', async (t) => {
  await refused(t, withSan([DNS, '*.plant.local']), 403, /wildcard.*\*\.plant\.local/);
  // a grant that says so may have it, within its dns_names
  t.is(issuedCert(t, await enroll(gw, withSan([DNS, '*.plant.local']).b64, { label: 'wild' })).subjectAltName, 'DNS:*.plant.local');
  await refused(t, withSan([DNS, '*.other.local']), 403, /subjectAltName dns:\*\.other\.local is not allowed/, 'wild');
});

test('a very long hostile value is cut in the reason (64 characters and …)', async (t) => {
  const long = `${'x'.repeat(100)}\u0007${'y'.repeat(200)}`;
  const res = await enroll(gw, withSan([DNS, long]).b64);
  assertReason(t, res, 400, /dNSName "x{64}…"/);
});

// ---- iPAddress, rfc822Name, URI ----

test('an iPAddress of 0, 5 or 8 octets is 400 (4 or 16 only in a SAN); 4 and 16 are issued', async (t) => {
  for (const n of [0, 5, 8]) await refused(t, withSan([IP, Buffer.alloc(n, 1)]), 400, /iPAddress/);
  const cert = issuedCert(t, await enroll(gw, withSan([IP, Buffer.from([10, 0, 0, 1])], [IP, Buffer.from('20010db8000000000000000000000001', 'hex')]).b64));
  t.is(cert.subjectAltName, 'IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1');
});

const badEmail = ['plant.local', 'user@', '@plant.local', 'a b@plant.local', 'user@@plant.local', 'user@-bad.plant.local', 'user@plant..local', 'us\0er@plant.local', '"quoted"@plant.local', 'user@[10.0.0.1]', '.user@plant.local', 'user.@plant.local', 'üser@plant.local'];
test('rfc822Names that are not a plain mailbox (local@domain, LDH domain) are 400', async (t) => {
  for (const v of badEmail) await refused(t, withSan([EMAIL, v]), 400, /rfc822Name/);
  const cert = issuedCert(t, await enroll(gw, withSan([EMAIL, 'first.last+tag@plant.local'], [EMAIL, "o'brien_x-1@Line-7.plant.local"]).b64));
  t.deepEqual(parseCertificate(cert.raw).subjectAltNames, [{ type: 'email', value: 'first.last+tag@plant.local' }, { type: 'email', value: "o'brien_x-1@Line-7.plant.local" }]);
});

const badUri = ['plant.local/path', '/relative', 'https://plant local/', 'https://plant.local/a b', 'https:', 'https://', 'https://user@/x', 'https://-bad.local/', 'ht_tp://plant.local/', '1http://plant.local/', 'https://plant.local/%zz', 'https://plant.local/\u0001', 'https://plant.local/<x>', 'https://plant.local:99999999/'];
test('URIs that are not absolute RFC 3986 URIs with a scheme are 400', async (t) => {
  for (const v of badUri) await refused(t, withSan([URI, v]), 400, /URI/);
  const ok = ['spiffe://plant.local/ns/line-7/sa/plc', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'https://[2001:db8::1]:8443/est?x=1#f', 'https://10.0.0.1/a%20b'];
  const cert = issuedCert(t, await enroll(gw, withSan(...ok.map((v): [number, string] => [URI, v])).b64));
  t.is(cert.subjectAltName, ok.map((v) => `URI:${v}`).join(', '));
});

// ---- subject: DirectoryString values ----

test('duplicate attributes in one multi-valued RDN (CN=a+CN=a) are 400; CN=a+O=b is fine', async (t) => {
  await refused(t, withSubject(rawName([[OID.commonName, utf8('dup')], [OID.commonName, utf8('dup')]])), 400, /duplicate.*CN/);
  // equal under RFC 4518 matching, though the bytes differ
  await refused(t, withSubject(rawName([[OID.commonName, utf8('Dup')], [OID.commonName, printable('dup')]])), 400, /duplicate.*CN/);
  const ok = issuedCert(t, await enroll(gw, withSubject(rawName([[OID.commonName, utf8('multi')], [OID.organizationName, utf8('Plant')]])).b64));
  t.regex(ok.subject, /CN=multi/);
});

test('a UTF8String that is not valid UTF-8 is 400 (no U+FFFD stand-ins: two byte strings would read alike)', async (t) => {
  for (const bytes of [[0x61, 0xff, 0x62], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x61, 0xe2, 0x82]]) {
    await refused(t, withSubject(rawName([[OID.commonName, tlv(Tag.UTF8String, Buffer.from(bytes))]])), 400, /UTF-8/);
  }
});

test('PrintableString outside its character set (@, _, *, &) is 400', async (t) => {
  for (const v of ['a@b', 'a_b', 'a*b', 'a&b']) await refused(t, withSubject(rawName([[OID.commonName, printable(v)]])), 400, /PrintableString/);
});

test('TeletexString, BMPString, UniversalString and IA5String are not DirectoryStrings we copy (RFC 5280 §4.1.2.4): 400', async (t) => {
  const forms: Array<[number, Buffer]> = [
    [Tag.TeletexString, Buffer.from('tele', 'latin1')],
    [Tag.BMPString, Buffer.from([0, 0x62, 0, 0x6d, 0, 0x70])],
    [Tag.UniversalString, Buffer.from([0, 0, 0, 0x75])],
    [Tag.IA5String, Buffer.from('ia5')],
  ];
  for (const [tag, c] of forms) await refused(t, withSubject(rawName([[OID.commonName, tlv(tag, c)]])), 400, /UTF8String or PrintableString/);
});

test('control characters anywhere in a name are 400: C0, DEL and C1, in the subject and in SANs', async (t) => {
  for (const v of ['a\u0000b', 'a\u0007b', 'a\nb', 'a\u007fb', 'a\u0085b', 'a\u009bb']) {
    await refused(t, withSubject(rawName([[OID.commonName, utf8(v)]])), 400, /control character/);
  }
  await refused(t, withSubject(rawName([[OID.organizationName, utf8('Plant\u001b[31m')], [OID.commonName, utf8('x')]])), 400, /control character/);
});

test('bidirectional formatting characters (Trojan Source: U+202E and the isolates) in a name are 400, and no reason or audit line carries one raw', async (t) => {
  // "plc-7\u202Eexe.1" shows as "plc-71.exe" wherever it is printed: an operator reading a list or a log sees another name
  for (const v of ['plc-7\u202eexe.1', 'a\u202ab', 'a\u2066b\u2069', 'a\u200fb']) {
    await refused(t, withSubject(rawName([[OID.commonName, utf8(v)]])), 400, /formatting character/);
  }
  await refused(t, withSan([EMAIL, Buffer.from('op\u202e@plant.local', 'utf8')]), 400, /./);
  const raw = /[\p{Cf}\u2028\u2029]/u;
  const res = await enroll(gw, withSubject(rawName([[OID.commonName, utf8('plc-7\u202eexe.1')]])).b64);
  t.false(raw.test(res.body.toString('utf8')), `reason: ${JSON.stringify(res.body.toString('utf8'))}`);
  t.true(res.body.toString('utf8').includes('\\u202e'), 'shown escaped');
  t.false(gw.audit().some((l) => raw.test(JSON.stringify(l))), 'no audit line carries one raw');
});

test('RFC 5280 Appendix A bounds: CN of 65 characters is 400, 64 is issued; O of 65, C of 3 letters, serialNumber of 65 are 400', async (t) => {
  await refused(t, withSubject(cn('c'.repeat(65))), 400, /CN.*64/);
  issuedCert(t, await enroll(gw, withSubject(cn('c'.repeat(64))).b64));
  await refused(t, withSubject(buildName([['O', 'o'.repeat(65)], ['CN', 'x']])), 400, /O .*64/);
  await refused(t, withSubject(buildName([['C', 'DEU'], ['CN', 'x']])), 400, /C .*2/);
  await refused(t, withSubject(buildName([['serialNumber', '1'.repeat(65)], ['CN', 'x']])), 400, /serialNumber.*64/);
  // bounds count characters, not octets: 64 three-octet characters are 64
  issuedCert(t, await enroll(gw, withSubject(cn('\u20ac'.repeat(64))).b64));
});

test('max_name_length moves the CN bound per label: 100 characters issued at 128, a 9-character CN refused at 8', async (t) => {
  issuedCert(t, await enroll(gw, withSubject(cn('l'.repeat(100))).b64, { label: 'longnames' }));
  await refused(t, withSubject(cn('l'.repeat(100))), 400, /CN.*64/);
  await refused(t, withSubject(cn('ninechars')), 400, /CN.*8/, 'shortnames');
});

test('countryName must be a PrintableString, emailAddress and domainComponent IA5Strings in their own syntax', async (t) => {
  await refused(t, withSubject(rawName([[OID.countryName, utf8('DE')]], [[OID.commonName, utf8('x')]])), 400, /C .*PrintableString/);
  await refused(t, withSubject(rawName([[OID.emailAddress, utf8('a@plant.local')]], [[OID.commonName, utf8('x')]])), 400, /emailAddress.*IA5String/);
  await refused(t, withSubject(rawName([[OID.emailAddress, ia5('not a mailbox')]], [[OID.commonName, utf8('x')]])), 400, /emailAddress/);
  await refused(t, withSubject(rawName([[OID.domainComponent, ia5('bad label')]], [[OID.commonName, utf8('x')]])), 400, /DC/);
  issuedCert(t, await enroll(gw, withSubject(rawName([[OID.domainComponent, ia5('local')]], [[OID.domainComponent, ia5('plant')]], [[OID.commonName, utf8('dc-ok')]])).b64));
});

// ---- OBJECT IDENTIFIERs: X.690 §8.19.2, no 0x80 leading octet in a subidentifier ----

test('an OID with a non-minimal subidentifier is 400 wherever it sits: an attribute type, an extension, a purpose', async (t) => {
  // 2.5.4.3 written as 55 04 80 03
  await refused(t, withSubject(rawName([[rawOid(0x55, 0x04, 0x80, 0x03), utf8('x')]])), 400, /OID/);
  // 2.5.29.17 written as 55 1d 80 11: OpenSSL drops such an extension list, we must not read it
  const ext = seq(rawOid(0x55, 0x1d, 0x80, 0x11), tlv(Tag.OCTET_STRING, san([DNS, 'x.plant.local']).value));
  const csr = rawCsr({ key, subject: cn('oid-ext'), attributes: [seq(Buffer.from([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e]), tlv(Tag.SET, seq(ext)))] });
  await refused(t, csr, 400, /OID/);
  const eku = rawCsr({ key, subject: cn('oid-eku'), attributes: [extensionRequest({ oid: OID.extKeyUsage, value: seq(rawOid(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x80, 0x02)) })] });
  await refused(t, eku, 400, /OID/);
});

test('a directoryName SAN is held to the subject\'s rules too (invalid UTF-8 inside is 400)', async (t) => {
  const dir = ctx(4, true, rawName([[OID.commonName, tlv(Tag.UTF8String, Buffer.from([0xff]))]]));
  await refused(t, rawCsr({ key, subject: cn('dirname'), attributes: [extensionRequest({ oid: OID.subjectAltName, value: seq(dir) })] }), 400, /UTF-8/);
});
