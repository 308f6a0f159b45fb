// libest's estclient against est-gateway (opt-in, LIBEST_BIN): cacerts, csrattrs
// (-a: a 204 would be EST_ERR_HTTP_NO_CONTENT), enroll with Basic after the 401
// challenge (-e -a, the attributes estclient then adds to its CSR), reenroll
// presenting the issued certificate alone, serverkeygen, PoP linking.
import test from 'ava';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCsrAttrs } from '../../src/est/csrattrs.js';
import { OID } from '../../src/est/oids.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { openssl, scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { LIBEST_BIN, deviceKey, estclient, explainSkip, failureOf, libest } from './libest.js';

explainSkip('estclient against est-gateway');

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let key: string;
test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-client-');
  gw = await startTestGateway();
  key = await deviceKey(tmp.path('device.key.pem'));
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

libest('estclient -g: the gateway\'s chain, ending in its root', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('g'), ['-g']);
  t.is(failureOf(r), undefined);
  const certs = parseCertsOnly(decodeEstBase64(Buffer.from(await r.file('cacert-0-0.pkcs7'))));
  t.true(certs.some((c) => new X509Certificate(c).raw.equals(new X509Certificate(gw.caPem).raw)));
});

libest('estclient -a: csrattrs is read without EST_ERR_HTTP_NO_CONTENT, and lists the label\'s key types', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('a'), ['-a']);
  t.is(failureOf(r), undefined, r.output);
  const attrs = parseCsrAttrs(decodeEstBase64(Buffer.from(await r.file('csr-0-0.base64'))));
  t.true(attrs.some((a) => 'type' in a && a.type === OID.ecPublicKey));
  t.true(attrs.some((a) => 'type' in a && a.type === OID.rsaEncryption));
});

let certFile: string;
libest('estclient -e -a: csrattrs first, then enroll; Basic only after the 401 challenge', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('e'), ['-e', '-a', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--pem-output']);
  t.is(failureOf(r), undefined, r.output);
  certFile = tmp.path('e/cert-0-0.pem');
  const cert = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(cert.subject, 'CN=EST-client', 'with -a estclient builds the CSR itself and names it EST-client');
  t.true(cert.verify(new X509Certificate(gw.caPem).publicKey));
  const lines = gw.audit().filter((l) => l.op === 'simpleenroll');
  t.deepEqual(lines.map((l) => [l.status, l.identity]), [[401, undefined], [200, 'user:estuser']], 'no credentials first, then Basic');
});

libest('estclient -r with its certificate (no password): renewed, same subject, new serial', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('r'), ['-r', '-c', certFile, '-k', key, '--pem-output']);
  t.is(failureOf(r), undefined, r.output);
  const before = new X509Certificate(await readFile(certFile));
  const after = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(after.subject, before.subject);
  t.not(after.serialNumber, before.serialNumber);
  const line = gw.audit().filter((l) => l.op === 'simplereenroll' && l.status === 200).at(-1);
  t.is(line?.identity, 'cert:device/EST-client');
  t.is(line?.reenroll, 'renew');
});

libest('estclient -q -x RSA key: serverkeygen answers an RSA-2048 key (the default serverkeygen_key) with its certificate', async (t) => {
  const rsa = tmp.path('rsa.key.pem');
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa]);
  const r = await estclient(gw.port, gw.caFile, tmp.path('q'), ['-q', '-u', 'estuser', '-h', 'estpwd', '-x', rsa, '--common-name', 'libest-skg', '--pem-output']);
  t.is(failureOf(r), undefined, r.output);
  const key = createPrivateKey({ key: decodeEstBase64(Buffer.from(await r.file('key-0-0.key'))), format: 'der', type: 'pkcs8' });
  t.is(key.asymmetricKeyDetails?.modulusLength, 2048);
  const cert = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(cert.subject, 'CN=libest-skg');
  t.true(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(createPublicKey(key).export({ format: 'der', type: 'spki' })));
});

libest('require_pop: estclient -e -a links tls-unique because csrattrs lists challengePassword; -e without -a is 400', async (t) => {
  const pop = await startTestGateway({ labels: { default: { require_pop: true } } });
  t.teardown(() => pop.close());
  const linked = await estclient(pop.port, pop.caFile, tmp.path('pop-ea'), ['-e', '-a', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--pem-output']);
  t.is(failureOf(linked), undefined, linked.output);
  t.is(new X509Certificate(await linked.file('cert-0-0.pem')).subject, 'CN=EST-client');
  const unlinked = await estclient(pop.port, pop.caFile, tmp.path('pop-e'), ['-e', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'no-pop', '--pem-output']);
  t.regex(failureOf(unlinked) ?? '', /EST_ERR_HTTP_BAD_REQ/);
  t.regex(String(pop.audit().at(-1)?.reason), /requires proof-of-possession/);
});
