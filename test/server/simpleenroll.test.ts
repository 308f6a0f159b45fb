import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { basic, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

let gw: TestGateway;
test.before(async () => {
  gw = await startTestGateway();
});
test.after.always(async () => gw?.close());

const enroll = (b64: string, headers: Record<string, string> = {}) =>
  httpsRequest(`${gw.url}/simpleenroll`, {
    ca: gw.caPem,
    body: b64,
    headers: { 'Content-Type': 'application/pkcs10', Authorization: basic('estuser', 'estpwd'), ...headers },
  });

test('RFC 7030 §4.2.3: simpleenroll answers certs-only with the issued certificate alone', async (t) => {
  const csr = await makeCsr('device-1');
  const res = await enroll(csr.b64);
  t.is(res.status, 200, res.body.toString());
  t.deepEqual(res.rawHeaders.find(([k]) => k === 'Content-Type'), ['Content-Type', 'application/pkcs7-mime; smime-type=certs-only']);
  t.truthy(res.rawHeaders.find(([k]) => k === 'Content-Length'));
  t.falsy(res.headers['transfer-encoding']);
  const text = res.body.toString('latin1');
  t.true(text.endsWith('\n'));
  t.true(text.split('\n').slice(0, -1).every((l) => l.length <= 64));
  const certs = parseCertsOnly(decodeEstBase64(res.body));
  t.is(certs.length, 1);
  const x = new X509Certificate(certs[0]!);
  t.is(x.subject, 'CN=device-1');
  t.true(x.verify(new X509Certificate(gw.caPem).publicKey));
  const audit = gw.audit().find((l) => l.op === 'simpleenroll' && l.status === 200)!;
  t.is(audit.identity, 'user:estuser');
  t.is(audit.serial, x.serialNumber.toLowerCase());
  t.false(JSON.stringify(gw.logs).includes('estpwd'));
});

test('RFC 7030 §3.2.3: a request without credentials gets 401 with a Basic challenge', async (t) => {
  const csr = await makeCsr('device-2');
  const res = await enroll(csr.b64, { Authorization: '' });
  t.is(res.status, 401);
  t.deepEqual(res.rawHeaders.find(([k]) => k === 'WWW-Authenticate'), ['WWW-Authenticate', 'Basic realm="estrealm"']);
  t.regex(res.headers['content-type']!, /^text\/plain/);
});
