// Our hand-written DER codec against pkijs (an independent parser) and the
// captures of real peers.
import test from 'ava';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { webcrypto, X509Certificate } from 'node:crypto';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCsr, verifyCsr } from '../../src/est/csr.js';
import { buildCsrAttrs, parseCsrAttrs } from '../../src/est/csrattrs.js';
import { boundaryOf, parseMultipart } from '../../src/est/multipart.js';
import { formatName, parseIp } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { buildCertsOnly, parseCertsOnly } from '../../src/est/pkcs7.js';
import { loadCaptures } from '../helpers/vectors.js';
import { makeCsr } from '../helpers/pki.js';

pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as never }));
const ab = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

test('every CSR the field peers sent parses and its signature verifies', (t) => {
  const reqs = [...loadCaptures('libest', 'request'), ...loadCaptures('globalsign', 'request')].filter((c) => c.startLine.startsWith('POST'));
  t.true(reqs.length >= 8);
  for (const c of reqs) {
    const csr = parseCsr(decodeEstBase64(c.body));
    t.true(verifyCsr(csr), c.name);
    const oracle = pkijs.CertificationRequest.fromBER(ab(csr.der));
    t.is(oracle.subject.typesAndValues[0]!.value.valueBlock.value, formatName(csr.subject).replace(/^CN=/, ''), c.name);
  }
});

test('a CSR we build is what pkijs reads, and pkijs verifies its signature', async (t) => {
  const csr = await makeCsr('dev-1', {
    keySpec: 'rsa2048',
    subjectAltNames: [{ type: 'dns', value: 'dev-1.plant.local' }, { type: 'ip', value: '2001:db8::7' }],
    challengePassword: 'q83+/=',
    basicConstraints: { ca: true, pathLen: 0 },
    extKeyUsage: [OID.clientAuth],
  });
  const ours = parseCsr(csr.der);
  t.true(verifyCsr(ours));
  t.deepEqual(ours.subjectAltNames, [{ type: 'dns', value: 'dev-1.plant.local' }, { type: 'ip', value: '2001:db8::7' }]);
  t.is(ours.challengePassword, 'q83+/=');
  t.deepEqual(ours.basicConstraints, { ca: true, pathLen: 0 });
  t.deepEqual(ours.extKeyUsage, [OID.clientAuth]);
  t.deepEqual(ours.key, { type: 'rsa', bits: 2048, exponent: 65537n });
  const oracle = pkijs.CertificationRequest.fromBER(ab(csr.der));
  t.true(await oracle.verify());
});

test('a flipped signature byte fails verification', async (t) => {
  const csr = await makeCsr('dev-2');
  const bad = Buffer.from(csr.der);
  bad[bad.length - 5]! ^= 0x01;
  t.false(verifyCsr(parseCsr(bad)));
});

test('certs-only: ours is what pkijs reads, in order; every response capture parses', (t) => {
  const captures = [...loadCaptures('libest', 'response'), ...loadCaptures('globalsign', 'response')].filter(
    (c) => c.startLine.includes(' 200 ') && (c.headers['content-type'] ?? '').startsWith('application/pkcs7-mime'),
  );
  t.true(captures.length >= 4);
  for (const c of captures) {
    const certs = parseCertsOnly(decodeEstBase64(c.body));
    t.true(certs.length >= 1, c.name);
    for (const d of certs) t.notThrows(() => new X509Certificate(d), c.name);
    const rebuilt = buildCertsOnly(certs);
    const signed = new pkijs.SignedData({ schema: pkijs.ContentInfo.fromBER(ab(rebuilt)).content });
    t.deepEqual(
      signed.certificates!.map((x) => Buffer.from((x as pkijs.Certificate).toSchema().toBER())),
      certs,
    );
  }
});

test('csrattrs: libest example attributes (with its trailing NUL) round-trip', (t) => {
  const c = loadCaptures('libest', 'response').find((x) => x.name.includes('04-'))!;
  const attrs = parseCsrAttrs(decodeEstBase64(c.body));
  t.true(attrs.length >= 4);
  t.deepEqual(parseCsrAttrs(buildCsrAttrs(attrs)), attrs);
  const ours = buildCsrAttrs([{ oid: OID.challengePassword }]);
  t.is((asn1js.fromBER(ab(ours)).result as asn1js.Sequence).valueBlock.value.length, 1);
});

test('serverkeygen multipart captures split into key and certificate parts', (t) => {
  for (const c of [...loadCaptures('libest', 'response'), ...loadCaptures('globalsign', 'response')]) {
    const type = c.headers['content-type'] ?? '';
    if (!type.startsWith('multipart/mixed')) continue;
    const parts = parseMultipart(c.body, boundaryOf(type));
    t.is(parts.length, 2, c.name);
    t.is(parts[0]!.headers['content-type'], 'application/pkcs8');
    t.true(parts[1]!.headers['content-type']!.startsWith('application/pkcs7-mime'));
    t.is(parseCertsOnly(decodeEstBase64(parts[1]!.body)).length, 1);
  }
});

test('IPv6 addresses are written and read canonically (RFC 5952)', (t) => {
  t.is(parseIp('::1').toString('hex'), '00000000000000000000000000000001');
  t.is(parseIp('2001:db8::ff00:42:8329').toString('hex'), '20010db8000000000000ff0000428329');
  t.is(parseIp('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
});
