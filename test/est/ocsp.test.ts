// The OCSP codec (src/est/ocsp.ts) against independent encoders and readers:
// requests made by `openssl ocsp -reqout` and by pkijs parse to the CertIDs and
// nonce they carry and name their issuer; the responses we sign read the same
// in pkijs (statuses, revocation time and reason, nonce) and verify against
// the signing CA only, in pkijs and in our own reader.
import test from 'ava';
import * as pkijs from 'pkijs';
import { readFile, writeFile } from 'node:fs/promises';
import { toPem } from '../../src/est/base64.js';
import {
  buildCertId, buildOcspRequest, buildOcspResponse, certIdNamesIssuer, ocspErrorResponse, parseOcspRequest, parseOcspResponse, signedByCa,
} from '../../src/est/ocsp.js';
import { type CaMaterial, createRootCa, createSubordinateCa } from '../../src/pki/ca.js';
import { leafCert } from '../helpers/client-certs.js';
import { openssl, scratchDir } from '../helpers/cli.js';

const LIMITS = { maxCertIds: 8 };
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let root: CaMaterial;
let sub: CaMaterial;
let rsa: CaMaterial;
test.before(async () => {
  tmp = await scratchDir('estgw-ocsp-codec-');
  root = await createRootCa('root', tmp.path('root'), { subject: [['O', 'Test'], ['CN', 'ocsp root']], days: 30 });
  sub = await createSubordinateCa('sub', tmp.path('sub'), root, { subject: [['O', 'Test'], ['CN', 'ocsp sub']], days: 30 });
  rsa = await createRootCa('rsa', tmp.path('rsa'), { subject: [['CN', 'ocsp rsa root']], days: 30, keySpec: 'rsa2048' });
});
test.after.always(async () => tmp?.remove());

test('openssl ocsp -reqout (SHA-1 and SHA-256 CertIDs, with and without nonce) parses: serial, nonce, and the CertID names its issuer', async (t) => {
  const leaf = await leafCert(sub, 'ocsp-leaf');
  await writeFile(tmp.path('sub.pem'), toPem('CERTIFICATE', sub.certDer));
  await writeFile(tmp.path('leaf.pem'), leaf.certPem);
  for (const [digest, extra] of [['-sha1', []], ['-sha256', []], ['-sha256', ['-no_nonce']]] as const) {
    await openssl(['ocsp', '-issuer', tmp.path('sub.pem'), digest, '-cert', tmp.path('leaf.pem'), ...extra, '-reqout', tmp.path('req.der')]);
    const req = parseOcspRequest(await readFile(tmp.path('req.der')), LIMITS);
    t.is(req.certIds.length, 1);
    t.is(req.certIds[0]!.serialHex, leaf.serialHex);
    t.is(req.certIds[0]!.hash, digest === '-sha1' ? 'sha1' : 'sha256');
    t.true(certIdNamesIssuer(req.certIds[0]!, sub.fields.subjectDer, sub.fields.spki));
    t.false(certIdNamesIssuer(req.certIds[0]!, root.fields.subjectDer, root.fields.spki));
    t.is(req.nonce?.length, extra.length ? undefined : 16, 'openssl sends a 16-octet nonce unless told not to');
  }
});

test('a pkijs-built request parses to its serial and nonce', async (t) => {
  const leaf = await leafCert(root, 'pkijs-leaf');
  const req = new pkijs.OCSPRequest();
  await req.createForCertificate(pkijs.Certificate.fromBER(leaf.der), { hashAlgorithm: 'SHA-256', issuerCertificate: pkijs.Certificate.fromBER(root.certDer) });
  const parsed = parseOcspRequest(Buffer.from(req.toSchema(true).toBER()), LIMITS);
  t.is(parsed.certIds[0]!.serialHex, leaf.serialHex);
  t.true(certIdNamesIssuer(parsed.certIds[0]!, root.fields.subjectDer, root.fields.spki));
  // our own builder makes the same CertID bytes
  t.deepEqual(parsed.certIds[0]!.der, buildCertId('sha256', root.fields.subjectDer, root.fields.spki, Buffer.from(leaf.serialHex, 'hex')));
});

test('our responses read the same in pkijs: good / revoked with time and reason / unknown, nonce, and verify against the signing CA only', async (t) => {
  for (const ca of [root, sub, rsa]) {
    const ids = ['0a', '0b', '0c'].map((s) => buildCertId('sha1', ca.fields.subjectDer, ca.fields.spki, Buffer.from(s, 'hex')));
    const at = new Date(Date.UTC(2026, 10, 30, 12));
    const revokedAt = new Date(Date.UTC(2026, 10, 29, 8, 30));
    const nonce = Buffer.from('0123456789abcdef');
    const der = buildOcspResponse({ certDer: ca.certDer, spki: ca.fields.spki, key: ca.key }, at, [
      { certId: ids[0]!, cert: { status: 'good' }, thisUpdate: at, nextUpdate: new Date(at.getTime() + 3600_000) },
      { certId: ids[1]!, cert: { status: 'revoked', revokedAt, reason: 'keyCompromise' }, thisUpdate: at, nextUpdate: new Date(at.getTime() + 3600_000) },
      { certId: ids[2]!, cert: { status: 'unknown' }, thisUpdate: at, nextUpdate: new Date(Date.UTC(2055, 0, 1)) },
    ], nonce);

    const resp = pkijs.OCSPResponse.fromBER(der);
    t.is(resp.responseStatus.valueBlock.valueDec, 0);
    const basic = pkijs.BasicOCSPResponse.fromBER(resp.responseBytes!.response.valueBlock.valueHexView);
    t.true(await basic.verify({ trustedCerts: [root, rsa].map((c) => pkijs.Certificate.fromBER(c.certDer)) }), ca.name);
    const singles = basic.tbsResponseData.responses;
    t.deepEqual(singles.map((s) => s.certStatus.idBlock.tagNumber), [0, 1, 2]);
    t.deepEqual(singles[0]!.thisUpdate, at);
    t.deepEqual(singles[2]!.nextUpdate, new Date(Date.UTC(2055, 0, 1)));

    const ours = parseOcspResponse(der);
    if (ours.status !== 'successful') return t.fail();
    t.deepEqual(ours.basic.responses.map((r) => r.cert), [{ status: 'good' }, { status: 'revoked', revokedAt, reason: 'keyCompromise' }, { status: 'unknown' }]);
    t.deepEqual(ours.basic.nonce, nonce);
    t.deepEqual(ours.basic.responses.map((r) => r.certId.der), ids);
    // RFC 6960 KeyHash is RFC 5280 key identifier method 1, which our CAs' subjectKeyIdentifier uses
    t.deepEqual(ours.basic.responderKeyHash, ca.fields.subjectKeyId, 'responderID byKey');
    t.true(signedByCa(ours.basic, ca.certDer));
    for (const other of [root, sub, rsa].filter((c) => c !== ca)) t.false(signedByCa(ours.basic, other.certDer), `${ca.name} vs ${other.name}`);
  }
});

test('error responses are a bare status; requests we refuse say why', (t) => {
  t.deepEqual(ocspErrorResponse('tryLater'), Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]));
  t.deepEqual(parseOcspResponse(ocspErrorResponse('unauthorized')), { status: 'unauthorized' });
  const id = buildCertId('sha1', root.fields.subjectDer, root.fields.spki, Buffer.from([1]));
  t.throws(() => parseOcspRequest(buildOcspRequest([id], Buffer.alloc(33)), LIMITS), { message: /33 octets/ });
  t.throws(() => parseOcspRequest(buildOcspRequest(Array(9).fill(id)), LIMITS), { message: /9 certificates asked about, at most 8/ });
  // OCSPRequest { tbsRequest, optionalSignature [0] }: a one-CertID request is short enough for one-octet lengths
  const tbs = buildOcspRequest([id]).subarray(2);
  const withSig = Buffer.concat([Buffer.from([0x30, tbs.length + 4]), tbs, Buffer.from([0xa0, 0x02, 0x30, 0x00])]);
  t.throws(() => parseOcspRequest(withSig, LIMITS), { message: /signed requests are not supported/ });
});
