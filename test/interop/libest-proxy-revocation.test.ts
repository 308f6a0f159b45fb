// Revocation through libest's estproxy (opt-in, LIBEST_BIN): est-gateway (bottom,
// forwarding) → estproxy (middle) → est-gateway (top, signing). estproxy answers
// /crl/ itself with 404, so a bottom that fetches CRLs from its EST parent sees
// "no CRLs" (not an outage) and renews a certificate the top revoked: the proxy
// relays the renewal as its own enrollment, and the top never sees the device's
// certificate. A second bottom with `crl_origin` pointing at the top fetches the
// top's CRLs past the proxy and refuses it.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { eventually } from '../cache/helpers.js';
import { freePort } from '../client/support/net.js';
import { run, scratchDir } from '../helpers/cli.js';
import { type TestGateway, crlIndex, startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { ESTPROXY_LABELS, ESTPROXY_USERS, LIBEST_BIN, type Peer, deviceKey, estclient, estproxyCertificate, explainSkip, failureOf, libest, startEstproxy } from './libest.js';

explainSkip('revocation through libest estproxy');

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let top: TestGateway;
let proxy: Peer;
/** Fetches CRLs from its EST parent, the proxy. */
let bottom: TestGateway;
/** Fetches CRLs from the top (crl_origin). */
let bottomDirect: TestGateway;
let key: string;

/** The top's signing CA: the one entry of its CRL index. */
const topCa = async () => (await crlIndex(top)).find((e) => e.name === 'root')!;
const outages = (gw: TestGateway) => gw.logs.filter((l) => /cannot fetch the CRLs/.test(String(l.msg)));

test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-proxy-crl-');
  top = await startTestGateway({ users: ESTPROXY_USERS, labels: ESTPROXY_LABELS });
  await estproxyCertificate(top, tmp.path('proxy.pem'), tmp.path('proxy.key.pem'));
  proxy = await startEstproxy({ cert: tmp.path('proxy.pem'), key: tmp.path('proxy.key.pem'), trustFile: top.caFile, port: await freePort(), upstreamPort: top.port, cwd: tmp.dir });
  await writeFile(tmp.path('up.pw'), 'estpwd\n');
  const upstream = {
    url: `https://127.0.0.1:${proxy.port}/.well-known/est`,
    trust: top.caFile,
    username: 'estuser', // estproxy checks Basic itself (its built-in estuser/estpwd)
    password_file: tmp.path('up.pw'),
    reenroll: 'simpleenroll', // estproxy has no Client-Cert: the bottom vouches
    crl_refresh: 1,
  };
  // the bottoms' own CA (their TLS) under another name than the top's "root", so /crl/ can serve both
  const own = { cas: { bottom: { subject: '/CN=bottom TLS root' } }, server: { tls_issuer: 'bottom' } };
  bottom = await startTestGateway({ ...own, labels: { default: { mode: 'forward', upstream } } });
  bottomDirect = await startTestGateway({ ...own, labels: { default: { mode: 'forward', upstream: { ...upstream, crl_origin: new URL(top.url).origin } } } });
  key = await deviceKey(tmp.path('device.key.pem'));
});
test.after.always(async () => {
  await bottomDirect?.close();
  await bottom?.close();
  await proxy?.stop();
  await top?.close();
  await tmp?.remove();
});

libest('estproxy does not pass /crl/ through: it answers 404 itself, while the top serves its CRL index', async (t) => {
  const atProxy = await httpsRequest(`https://127.0.0.1:${proxy.port}/crl/`, { ca: top.caPem });
  t.is(atProxy.status, 404);
  t.regex(atProxy.body.toString(), /path specified is not recognized/);
  t.true((await topCa()).number >= 1);
});

let deviceCert: string;
libest('estclient -e at the bottom: the top signs through estproxy (the proxy\'s grant)', async (t) => {
  const r = await estclient(bottom.port, bottom.caFile, tmp.path('e'), ['-e', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'behind-two', '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${proxy.log().slice(-2000)}`);
  deviceCert = tmp.path('e/cert-0-0.pem');
  const cert = new X509Certificate(await r.file('cert-0-0.pem'));
  t.true(cert.verify(new X509Certificate(top.caPem).publicKey));
  t.is(top.audit().filter((l) => l.op === 'simpleenroll' && l.subject === 'CN=behind-two').at(-1)?.identity, 'cert:ra/estproxy');
});

libest('the bottom under estproxy holds no CRL of the top, logs no outage; the bottom with crl_origin holds the top\'s', async (t) => {
  const { keyId } = await topCa();
  t.true(await eventually(async () => (await crlIndex(bottomDirect)).some((e) => e.keyId === keyId), 15_000));
  t.deepEqual((await crlIndex(bottom)).map((e) => e.name), ['bottom'], 'its own CA only');
  t.deepEqual(outages(bottom), []);
  t.deepEqual(outages(bottomDirect), []);
});

libest('revoked at the top: the bottom under estproxy still renews it (no CRL reaches it); the bottom with crl_origin refuses it', async (t) => {
  const serial = new X509Certificate(await readFile(deviceCert)).serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
  const before = (await topCa()).number;
  const revoked = await run(process.execPath, [MAIN, 'certs', 'revoke', serial, '--reason', 'keyCompromise', '--data-dir', top.dataDir], {
    env: { ...process.env, ESTGW_DATA_DIR: '' },
    timeoutMs: 60_000,
  });
  t.is(revoked.code, 0, revoked.stderr);
  t.true(await eventually(async () => (await topCa()).number > before, 15_000));
  const { keyId } = await topCa();
  t.true(await eventually(async () => ((await crlIndex(bottomDirect)).find((e) => e.keyId === keyId)?.number ?? 0) > before, 15_000));

  const renewed = await estclient(bottom.port, bottom.caFile, tmp.path('r-proxy'), ['-r', '-c', deviceCert, '-k', key, '--pem-output']);
  t.is(failureOf(renewed), undefined, 'the gap: renewed although revoked');
  t.is(bottom.audit().filter((l) => l.op === 'simplereenroll').at(-1)?.status, 200);

  const refused = await estclient(bottomDirect.port, bottomDirect.caFile, tmp.path('r-direct'), ['-r', '-c', deviceCert, '-k', key, '--pem-output']);
  t.truthy(failureOf(refused), refused.output);
  const line = bottomDirect.audit().filter((l) => l.op === 'simplereenroll').at(-1);
  t.is(line?.status, 403);
  t.regex(String(line?.reason), new RegExp(`serial ${serial}\\) was revoked on \\S+: keyCompromise`));
});
