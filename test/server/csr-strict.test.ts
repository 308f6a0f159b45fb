// PKCS#10 structure and key checks through a real gateway: one reading of every
// request (RFC 2986 attributes and RFC 5280 extensions at most once each), no
// empty extKeyUsage (RFC 5280 §4.2.1.12: SIZE (1..MAX)), and RSA/EC key limits
// judged before the signature is verified, so a hostile key costs nothing.
import test from 'ava';
import { type KeyObject, X509Certificate, createPublicKey, generateKeyPair, randomBytes } from 'node:crypto';
import { parseCertificate } from '../../src/est/certificate.js';
import { NULL, bitString, oid, octetString, printable, seq, unsignedInteger, utf8 } from '../../src/est/der.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { attribute, extensionRequest, rawCsr, rsaKey } from '../helpers/csr-raw.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { generateKey } from '../../src/pki/keys.js';

const MS_EXT_REQ = '1.3.6.1.4.1.311.2.1.14';
let gw: TestGateway;
let ec: KeyObject;
let rsa: KeyObject;
test.before(async () => {
  gw = await startTestGateway({
    labels: {
      default: { key_types: ['rsa', 'p256', 'p384', 'p521'] },
      bigexp: { rsa_max_exponent: 4294967297 },
      small: { rsa_max_bits: 3072 },
    },
  });
  ec = await generateKey('p256');
  rsa = await rsaKey(2048);
});
test.after.always(async () => gw?.close());

test.after('nothing was answered 5xx', (t) => {
  t.deepEqual(gw.audit().filter((l) => Number(l.status) >= 500), []);
});

const subject = (cn: string) => buildName([['CN', cn]]);
const dnsSan = (name: string) => ({ oid: OID.subjectAltName, value: seq(Buffer.concat([Buffer.from([0x82, name.length]), Buffer.from(name)])) });
const fieldsOf = (x: X509Certificate) => parseCertificate(x.raw);

// ---- RFC 2986 attributes, RFC 5280 extensions: each at most once ----

test('two extensionRequest attributes are 400 (OpenSSL reads the first, a last-wins reader the second)', async (t) => {
  const csr = rawCsr({ key: ec, subject: subject('two-extreq'), attributes: [extensionRequest(dnsSan('first.plant.local')), extensionRequest(dnsSan('second.plant.local'))] });
  assertReason(t, await enroll(gw, csr.b64), 400, /duplicate attribute extensionRequest/);
});

test('extensionRequest next to the Microsoft msExtReq is 400: two extension lists, two readings', async (t) => {
  const ms = attribute(MS_EXT_REQ, seq(seq(oid(OID.subjectAltName), octetString(dnsSan('ms.plant.local').value))));
  const csr = rawCsr({ key: ec, subject: subject('ms-extreq'), attributes: [extensionRequest(dnsSan('std.plant.local')), ms] });
  assertReason(t, await enroll(gw, csr.b64), 400, /duplicate attribute/);
});

test('a lone msExtReq is read as the extension request it is (OpenSSL does), so its SAN meets policy and the certificate', async (t) => {
  const ms = attribute(MS_EXT_REQ, seq(seq(oid(OID.subjectAltName), octetString(dnsSan('ms-only.plant.local').value))));
  const cert = issuedCert(t, await enroll(gw, rawCsr({ key: ec, subject: subject('ms-only'), attributes: [ms] }).b64));
  t.is(cert.subjectAltName, 'DNS:ms-only.plant.local');
});

test('two challengePassword attributes are 400, and so are two values in one', async (t) => {
  const two = rawCsr({ key: ec, subject: subject('two-pw'), attributes: [attribute(OID.challengePassword, printable('a')), attribute(OID.challengePassword, printable('b'))] });
  assertReason(t, await enroll(gw, two.b64), 400, /duplicate attribute challengePassword/);
  const twoValues = rawCsr({ key: ec, subject: subject('two-pw-values'), attributes: [attribute(OID.challengePassword, printable('a'), printable('b'))] });
  assertReason(t, await enroll(gw, twoValues.b64), 400, /challengePassword/);
});

test('an unknown attribute type twice is 400 too; once it is ignored', async (t) => {
  const once = rawCsr({ key: ec, subject: subject('attr-once'), attributes: [attribute('1.3.6.1.4.1.99999.1', utf8('x'))] });
  issuedCert(t, await enroll(gw, once.b64));
  const twice = rawCsr({ key: ec, subject: subject('attr-twice'), attributes: [attribute('1.3.6.1.4.1.99999.1', utf8('x')), attribute('1.3.6.1.4.1.99999.1', utf8('y'))] });
  assertReason(t, await enroll(gw, twice.b64), 400, /duplicate attribute 1\.3\.6\.1\.4\.1\.99999\.1/);
});

test('the same extension twice in one extensionRequest is 400 with a short reason', async (t) => {
  const csr = rawCsr({ key: ec, subject: subject('dup-ext'), attributes: [extensionRequest(dnsSan('a.plant.local'), dnsSan('b.plant.local'))] });
  const res = await enroll(gw, csr.b64);
  assertReason(t, res, 400, /duplicate extension subjectAltName/);
  t.true(res.body.length < 200, res.body.toString());
});

// ---- RFC 5280 §4.2.1.12 extKeyUsage ----

test('an empty extKeyUsage SEQUENCE is 400, not a certificate without EKU (= any purpose)', async (t) => {
  const csr = rawCsr({ key: ec, subject: subject('eku-empty'), attributes: [extensionRequest({ oid: OID.extKeyUsage, value: seq() })] });
  assertReason(t, await enroll(gw, csr.b64), 400, /extKeyUsage.*empty/);
});

test('an extKeyUsage that does not parse is 400 (an INTEGER where a purpose OID belongs, trailing bytes, not a SEQUENCE)', async (t) => {
  for (const [n, value] of [
    ['integer', seq(Buffer.from([0x02, 0x01, 0x05]))],
    ['trailing', Buffer.concat([seq(oid(OID.clientAuth)), Buffer.from([0x00])])],
    ['octets', octetString(Buffer.from('clientAuth'))],
  ] as const) {
    const csr = rawCsr({ key: ec, subject: subject(`eku-bad-${n}`), attributes: [extensionRequest({ oid: OID.extKeyUsage, value })] });
    assertReason(t, await enroll(gw, csr.b64), 400, /extKeyUsage/);
  }
});

test('a purpose listed twice in extKeyUsage is 400', async (t) => {
  const csr = rawCsr({ key: ec, subject: subject('eku-dup'), attributes: [extensionRequest({ oid: OID.extKeyUsage, value: seq(oid(OID.clientAuth), oid(OID.clientAuth)) })] });
  assertReason(t, await enroll(gw, csr.b64), 400, /extKeyUsage.*twice/);
});

test('a well-formed extKeyUsage still narrows the label\'s set (regression guard)', async (t) => {
  const csr = rawCsr({ key: ec, subject: subject('eku-ok'), attributes: [extensionRequest({ oid: OID.extKeyUsage, value: seq(oid(OID.clientAuth)) })] });
  t.deepEqual(fieldsOf(issuedCert(t, await enroll(gw, csr.b64))).extKeyUsage, [OID.clientAuth]);
});

// ---- keys, judged before the signature ----

/** An RSA SPKI with this modulus and exponent (RFC 3279 §2.3.1: parameters NULL). */
const rsaSpki = (n: Buffer, e: Buffer) => seq(seq(oid(OID.rsaEncryption), NULL), bitString(seq(unsignedInteger(n), unsignedInteger(e))));
const modulusOf = (k: KeyObject) => Buffer.from(createPublicKey(k).export({ format: 'jwk' }).n!, 'base64url');
/** An odd number of `bits` bits, top bit set. */
const oddOf = (bits: number) => {
  const b = randomBytes(bits / 8);
  b[0]! |= 0x80;
  b[b.length - 1]! |= 1;
  return b;
};

test('RSA with a 2048-bit public exponent is 403 naming the exponent, before the (garbage) signature is looked at', async (t) => {
  const csr = rawCsr({ key: rsa, subject: subject('huge-e'), spki: rsaSpki(modulusOf(rsa), oddOf(2048)), signature: randomBytes(256) });
  assertReason(t, await enroll(gw, csr.b64), 403, /exponent/);
  // this file's tests run at once: find this request's line by its reason
  const line = gw.audit().find((l) => /exponent/.test(String(l.reason)) && l.status === 403);
  t.is(line?.outcome, 'rejected');
});

test('RSA exponents: even, 1 and 65539 are 403; 3 and 65537 are issued', async (t) => {
  for (const e of [[0x01, 0x00, 0x00], [0x01], [0x01, 0x00, 0x03]]) {
    const csr = rawCsr({ key: rsa, subject: subject('bad-e'), spki: rsaSpki(modulusOf(rsa), Buffer.from(e)), signature: randomBytes(256) });
    assertReason(t, await enroll(gw, csr.b64), 403, /exponent/);
  }
  issuedCert(t, await enroll(gw, (await makeCsr('e-65537', { key: rsa })).b64));
  const e3 = await new Promise<KeyObject>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 3 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))));
  issuedCert(t, await enroll(gw, (await makeCsr('e-3', { key: e3 })).b64));
});

test('rsa_max_exponent raises the bound: e = 2^31 - 1 is 403 on the default label and issued on one allowing 2^32 + 1', async (t) => {
  const key = await new Promise<KeyObject>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x7fffffff }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))));
  const csr = await makeCsr('e-big', { key });
  assertReason(t, await enroll(gw, csr.b64), 403, /exponent.*65537/);
  issuedCert(t, await enroll(gw, csr.b64, { label: 'bigexp' }));
});

test('RSA moduli over rsa_max_bits (default 8192) are 403 before any signature work; the bound is per label', async (t) => {
  const huge = rawCsr({ key: rsa, subject: subject('huge-n'), spki: rsaSpki(oddOf(16384), Buffer.from([1, 0, 1])), signature: randomBytes(2048) });
  assertReason(t, await enroll(gw, huge.b64), 403, /at most 8192 bits.*16384/);
  const k4096 = await makeCsr('rsa-4096', { keySpec: 'rsa4096' });
  issuedCert(t, await enroll(gw, k4096.b64));
  assertReason(t, await enroll(gw, k4096.b64, { label: 'small' }), 403, /at most 3072 bits/);
});

test('an RSA SPKI whose parameters are not NULL, or whose modulus is negative, is 400', async (t) => {
  const noNull = seq(seq(oid(OID.rsaEncryption)), bitString(seq(unsignedInteger(modulusOf(rsa)), unsignedInteger(Buffer.from([1, 0, 1])))));
  assertReason(t, await enroll(gw, rawCsr({ key: rsa, subject: subject('rsa-no-null'), spki: noNull }).b64), 400, /RSA.*parameters/);
  const negative = seq(seq(oid(OID.rsaEncryption), NULL), bitString(seq(Buffer.concat([Buffer.from([0x02, 0x82, 0x01, 0x00]), modulusOf(rsa)]), unsignedInteger(Buffer.from([1, 0, 1])))));
  assertReason(t, await enroll(gw, rawCsr({ key: rsa, subject: subject('rsa-neg'), spki: negative }).b64), 400, /modulus/);
});

test('EC keys: P-521 is issued where listed; explicit curve parameters (RFC 5480 §2.1.1 namedCurve only) are 400', async (t) => {
  const p521 = await new Promise<KeyObject>((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'P-521' }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))));
  issuedCert(t, await enroll(gw, (await makeCsr('p521', { key: p521 })).b64));
  const point = createPublicKey(ec).export({ format: 'der', type: 'spki' }).subarray(-65);
  const explicit = seq(seq(oid(OID.ecPublicKey), seq(Buffer.from([0x02, 0x01, 0x01]))), bitString(point));
  assertReason(t, await enroll(gw, rawCsr({ key: ec, subject: subject('ec-explicit'), spki: explicit }).b64), 400, /named curve/);
  const k1 = seq(seq(oid(OID.ecPublicKey), oid('1.3.132.0.10')), bitString(point));
  assertReason(t, await enroll(gw, rawCsr({ key: ec, subject: subject('ec-k1'), spki: k1 }).b64), 400, /curve 1\.3\.132\.0\.10/);
});

test('serverkeygen ignores the CSR\'s key altogether: a huge exponent there is no reason to refuse', async (t) => {
  const csr = rawCsr({ key: rsa, subject: subject('skg-huge-e'), spki: rsaSpki(modulusOf(rsa), oddOf(2048)), signature: randomBytes(256) });
  const res = await enroll(gw, csr.b64, { op: 'serverkeygen' });
  t.is(res.status, 200, res.body.toString());
});
