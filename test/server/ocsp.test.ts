// OCSP at a signing layer, through the real TLS gateway and its plain-HTTP
// crl_listen, asked by the real client (`openssl ocsp`), with revocation by
// the real `estgw certs revoke`: good → revoked with its reason, unknown for a
// serial not on record, the nonce echoed, GET and POST, and bad requests
// answered malformedRequest (an OCSP status, not a crash or a stack).
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as pkijs from 'pkijs';
import { toPem } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { buildCertId, buildOcspRequest, parseOcspResponse } from '../../src/est/ocsp.js';
import { run, scratchDir } from '../helpers/cli.js';
import { enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { httpPlain, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const OCSP_URL = 'http://ocsp.level3.plant.test/ocsp';

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let rootDer: Buffer;
test.before(async () => {
  tmp = await scratchDir('estgw-ocsp-');
  gw = await startTestGateway({ cas: { root: { ocsp_url: OCSP_URL, ocsp_validity: '10m' } }, server: { crl_listen: '127.0.0.1:0' } });
  rootDer = gw.gateway.pki.cas.get('root')!.certDer;
  await writeFile(tmp.path('root.pem'), toPem('CERTIFICATE', rootDer));
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const plainUrl = () => `http://127.0.0.1:${gw.gateway.crlPort!}/ocsp`;

async function device(t: Parameters<typeof issuedCert>[0], cn: string): Promise<{ cert: X509Certificate; file: string; serial: string }> {
  const cert = issuedCert(t, await enroll(gw, (await makeCsr(cn)).b64));
  const file = tmp.path(`${cn}.pem`);
  await writeFile(file, cert.toString());
  return { cert, file, serial: cert.serialNumber.toLowerCase().replace(/^(00)+/, '') };
}

/** `openssl ocsp` as a relying party runs it: stdout+stderr, and whether it exited 0. */
async function opensslOcsp(certFile: string, extra: string[] = []) {
  const r = await run('openssl', ['ocsp', '-issuer', tmp.path('root.pem'), '-cert', certFile, '-url', plainUrl(), '-resp_text', '-CAfile', tmp.path('root.pem'), ...extra]);
  return { ok: r.code === 0, out: r.stdout.toString() + r.stderr };
}

const ocspPlain = (method: string, path: string, body?: Buffer, type = 'application/ocsp-request') => httpPlain(gw.gateway.crlPort!, path, { method, ...(body ? { body, type } : {}) });

const certIdFor = (cert: X509Certificate, hash: 'sha1' | 'sha256' = 'sha1') => {
  const root = parseCertificate(rootDer);
  return buildCertId(hash, root.subjectDer, root.spki, parseCertificate(cert.raw).serial);
};

test('openssl ocsp: good, then revoked with its reason after `estgw certs revoke`; the certificate names the responder; nonce echoed and verified', async (t) => {
  const dev = await device(t, 'ocsp-plc-1');
  t.true(dev.cert.infoAccess?.includes(`OCSP - URI:${OCSP_URL}`), dev.cert.infoAccess);

  const good = await opensslOcsp(dev.file);
  t.true(good.ok, good.out);
  t.regex(good.out, /Response verify OK/);
  t.regex(good.out, new RegExp(`${dev.file}: good`));
  t.regex(good.out, /OCSP Nonce:/, 'openssl sends a nonce by default and finds it echoed');
  t.notRegex(good.out, /WARNING: no nonce/);
  t.regex(good.out, /Responder Id: [0-9A-F]{40}/, 'responderID byKey');

  const noNonce = await opensslOcsp(dev.file, ['-no_nonce']);
  t.true(noNonce.ok, noNonce.out);
  t.regex(noNonce.out, /Response verify OK/);
  t.regex(noNonce.out, new RegExp(`${dev.file}: good`));

  const revoked = await run(process.execPath, [MAIN, 'certs', 'revoke', dev.serial, '--reason', 'keyCompromise', '--data-dir', gw.dataDir], { env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });
  t.is(revoked.code, 0, revoked.stderr);
  const after = await opensslOcsp(dev.file);
  t.true(after.ok, after.out);
  t.regex(after.out, /Response verify OK/);
  t.regex(after.out, new RegExp(`${dev.file}: revoked`));
  t.regex(after.out, /Reason: keyCompromise/);
  t.regex(after.out, /Revocation Time: /);
});

test('a serial not on record is unknown, never good; over HTTPS too (POST), and the response is valid for pkijs', async (t) => {
  const dev = await device(t, 'ocsp-plc-2');
  // a certificate of the same issuer name and key that the CA never signed: the serial is all that differs
  const root = parseCertificate(rootDer);
  const foreign = buildCertId('sha256', root.subjectDer, root.spki, Buffer.from('0123456789abcdef0123', 'hex'));
  const reqDer = buildOcspRequest([certIdFor(dev.cert, 'sha256'), foreign], Buffer.from('a nonce of 20 bytes.'));
  const res = await httpsRequest(`https://127.0.0.1:${gw.port}/ocsp`, { ca: gw.caPem, method: 'POST', body: reqDer, headers: { 'Content-Type': 'application/ocsp-request' } });
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/ocsp-response');

  // pkijs, an independent reader: statuses and the CA-signed signature
  const ocspResp = pkijs.OCSPResponse.fromBER(res.body);
  t.is(ocspResp.responseStatus.valueBlock.valueDec, 0);
  const basic = pkijs.BasicOCSPResponse.fromBER(ocspResp.responseBytes!.response.valueBlock.valueHexView);
  const rootPk = pkijs.Certificate.fromBER(rootDer);
  t.true(await basic.verify({ trustedCerts: [rootPk] }));
  const statuses = basic.tbsResponseData.responses.map((r) => r.certStatus.idBlock.tagNumber);
  t.deepEqual(statuses, [0, 2], 'good for the one on record, unknown for the other');
  const nonce = basic.tbsResponseData.responseExtensions!.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')!;
  t.deepEqual(Buffer.from(nonce.extnValue.valueBlock.valueHexView), Buffer.concat([Buffer.from([0x04, 20]), Buffer.from('a nonce of 20 bytes.')]));
});

test('GET /ocsp/BASE64 (RFC 6960 A.1, URL-encoded or base64url) answers like POST; openssl reads it', async (t) => {
  const dev = await device(t, 'ocsp-plc-3');
  const reqDer = buildOcspRequest([certIdFor(dev.cert)]);
  for (const path of [`/ocsp/${encodeURIComponent(reqDer.toString('base64'))}`, `/ocsp/${reqDer.toString('base64url')}`]) {
    const res = await ocspPlain('GET', path);
    t.is(res.status, 200, path);
    t.is(res.type, 'application/ocsp-response');
    const parsed = parseOcspResponse(res.body);
    t.is(parsed.status, 'successful');
    if (parsed.status === 'successful') t.is(parsed.basic.responses[0]!.cert.status, 'good');
    await writeFile(tmp.path('get.der'), res.body);
    const r = await run('openssl', ['ocsp', '-respin', tmp.path('get.der'), '-issuer', tmp.path('root.pem'), '-cert', dev.file, '-CAfile', tmp.path('root.pem'), '-no_nonce']);
    t.is(r.code, 0, r.stderr);
    const out = r.stdout.toString() + r.stderr;
    t.regex(out, /Response verify OK/);
    t.regex(out, new RegExp(`${dev.file}: good`));
  }
});

test('malformed requests: malformedRequest as an OCSP answer; wrong type, oversize body and other methods get a short text reason', async (t) => {
  const bad = [Buffer.from('not DER at all'), Buffer.from([0x30, 0x03, 0x30, 0x01, 0x30]), buildOcspRequest([]), Buffer.alloc(0)];
  for (const body of bad) {
    const res = await ocspPlain('POST', '/ocsp', body);
    t.is(res.status, 200);
    t.is(res.type, 'application/ocsp-response');
    t.deepEqual(res.body, Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]), 'malformedRequest');
  }
  t.deepEqual((await ocspPlain('GET', '/ocsp/%%%not-base64')).body, Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]));
  // the HTTPS listener answers the same way
  const tls = await httpsRequest(`https://127.0.0.1:${gw.port}/ocsp`, { ca: gw.caPem, method: 'POST', body: Buffer.from('garbage'), headers: { 'Content-Type': 'application/ocsp-request' } });
  t.is(tls.status, 200);
  t.deepEqual(tls.body, Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]));
  t.is((await httpsRequest(`https://127.0.0.1:${gw.port}/ocspx`, { ca: gw.caPem })).status, 404, 'only /ocsp and below is OCSP');
  // more CertIDs than one request may carry
  const dev = await device(t, 'ocsp-plc-4');
  const many = buildOcspRequest(Array.from({ length: 9 }, () => certIdFor(dev.cert)));
  t.deepEqual((await ocspPlain('POST', '/ocsp', many)).body, Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]));
  // a CA this layer does not hold: unauthorized
  const other = parseCertificate(gw.gateway.pki.tls.certDer);
  const stranger = buildOcspRequest([buildCertId('sha1', other.subjectDer, other.spki, Buffer.from([1]))]);
  t.deepEqual((await ocspPlain('POST', '/ocsp', stranger)).body, Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]), 'unauthorized');

  const wrongType = await ocspPlain('POST', '/ocsp', buildOcspRequest([certIdFor(dev.cert)]), 'application/octet-stream');
  t.is(wrongType.status, 415);
  t.regex(wrongType.type, /^text\/plain/);
  const big = await ocspPlain('POST', '/ocsp', Buffer.alloc(5000, 0x30));
  t.is(big.status, 413);
  t.regex(big.body.toString(), /at most 4096 bytes/);
  const put = await ocspPlain('PUT', '/ocsp', Buffer.from([0x30, 0x00]));
  t.is(put.status, 405);
  t.notRegex(put.body.toString(), /at \w+ \(/, 'no stack');
  // the gateway still answers
  const again = await opensslOcsp(tmp.path('ocsp-plc-4.pem'));
  t.regex(again.out, /good/);
});

test('attacker: a flood of OCSP requests with fresh nonces (each a CA signature) is bounded by ocsp_rate: past it tryLater, enrollment unaffected, and the allowance comes back with time', async (t) => {
  let now = Date.now();
  const limited = await startTestGateway({ server: { crl_listen: '127.0.0.1:0', ocsp_rate: 3 }, now: () => now });
  t.teardown(() => limited.close());
  const root = parseCertificate(limited.gateway.pki.cas.get('root')!.certDer);
  const cert = issuedCert(t, await enroll(limited, (await makeCsr('ocsp-flood')).b64));
  const ask = async (i: number) => {
    const body = buildOcspRequest([buildCertId('sha1', root.subjectDer, root.spki, parseCertificate(cert.raw).serial)], Buffer.from(`nonce ${i}`.padEnd(16, '.')));
    const res = await httpsRequest(`https://127.0.0.1:${limited.port}/ocsp`, { ca: limited.caPem, method: 'POST', body, headers: { 'Content-Type': 'application/ocsp-request' } });
    return parseOcspResponse(res.body).status;
  };
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push(await ask(i));
  t.deepEqual(statuses, ['successful', 'successful', 'successful', 'tryLater', 'tryLater', 'tryLater']);
  issuedCert(t, await enroll(limited, (await makeCsr('ocsp-flood-2')).b64));
  now += 1000;
  t.is(await ask(7), 'successful');
});
