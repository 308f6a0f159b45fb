// libest's estproxy in front of est-gateway (opt-in, LIBEST_BIN): estproxy's one
// certificate (serverAuth + clientAuth + cmcRA) comes from a gateway label that
// issues those EKUs to one named user; the gateway's device label then grants
// the proxy's relayed enrollments to `cert:ra/estproxy`. estclient → estproxy →
// est-gateway: cacerts, csrattrs, enroll; renewal awaits issue 10 item 2.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { parseCsrAttrs } from '../../src/est/csrattrs.js';
import { OID } from '../../src/est/oids.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { freePort } from '../client/support/net.js';
import { scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { ESTPROXY_LABELS, ESTPROXY_USERS, LIBEST_BIN, type Peer, deviceKey, estclient, estproxyCertificate, explainSkip, failureOf, libest, startEstproxy } from './libest.js';

explainSkip('libest estproxy in front of est-gateway');

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let gw: TestGateway;
let proxy: Peer;
let key: string;

test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-proxy-');
  gw = await startTestGateway({ users: ESTPROXY_USERS, labels: ESTPROXY_LABELS });
  await estproxyCertificate(gw, tmp.path('proxy.pem'), tmp.path('proxy.key.pem'));
  proxy = await startEstproxy({ cert: tmp.path('proxy.pem'), key: tmp.path('proxy.key.pem'), trustFile: gw.caFile, port: await freePort(), upstreamPort: gw.port, cwd: tmp.dir });
  key = await deviceKey(tmp.path('device.key.pem'));
});
test.after.always(async () => {
  await proxy?.stop();
  await gw?.close();
  await tmp?.remove();
});

libest('estproxy\'s certificate from the gateway: serverAuth, clientAuth and cmcRA, named estproxy, SAN localhost and 127.0.0.1', async (t) => {
  const f = parseCertificate(new X509Certificate(await readFile(tmp.path('proxy.pem'))).raw);
  t.deepEqual(f.extKeyUsage, [OID.serverAuth, OID.clientAuth, OID.cmcRA]);
  t.deepEqual(f.subjectAltNames, [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }]);
});

libest('estclient -g and -a through estproxy: the gateway\'s chain and csrattrs', async (t) => {
  const g = await estclient(proxy.port, gw.caFile, tmp.path('g'), ['-g']);
  t.is(failureOf(g), undefined, g.output);
  const certs = parseCertsOnly(decodeEstBase64(Buffer.from(await g.file('cacert-0-0.pkcs7'))));
  t.true(certs.some((c) => c.equals(new X509Certificate(gw.caPem).raw)));
  const a = await estclient(proxy.port, gw.caFile, tmp.path('a'), ['-a']);
  t.is(failureOf(a), undefined, a.output);
  t.true(parseCsrAttrs(decodeEstBase64(Buffer.from(await a.file('csr-0-0.base64')))).some((x) => 'type' in x && x.type === OID.ecPublicKey));
});

let deviceCert: string;
libest('estclient -e through estproxy: the gateway issues under the grant for cert:ra/estproxy', async (t) => {
  const r = await estclient(proxy.port, gw.caFile, tmp.path('e'), ['-e', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'behind-estproxy', '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${proxy.log().slice(-2000)}`);
  deviceCert = tmp.path('e/cert-0-0.pem');
  const cert = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(cert.subject, 'CN=behind-estproxy');
  t.true(cert.verify(new X509Certificate(gw.caPem).publicKey));
  const line = gw.audit().filter((l) => l.op === 'simpleenroll' && l.subject === 'CN=behind-estproxy').at(-1);
  t.is(line?.identity, 'cert:ra/estproxy');
  t.is(line?.ra, true);
});

// estproxy relays simplereenroll with its own certificate and no Client-Cert
// header: the gateway takes it as the RA vouching for its client (RFC 7030 §3.7),
// within the proxy's grants.
libest('estclient -r through estproxy: renewed, as a renewal the RA vouches for', async (t) => {
  const r = await estclient(proxy.port, gw.caFile, tmp.path('r'), ['-r', '-u', 'estuser', '-h', 'estpwd', '-c', deviceCert, '-k', key, '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${JSON.stringify(gw.audit().at(-1))}`);
  const after = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(after.subject, 'CN=behind-estproxy');
  t.is(gw.audit().filter((l) => l.op === 'simplereenroll' && l.status === 200).at(-1)?.reenroll, 'vouched');
});
