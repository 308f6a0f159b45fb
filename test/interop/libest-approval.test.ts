// libest's estclient against a label with manual approval (opt-in, LIBEST_BIN):
// what the real program does with 202 + Retry-After, and how a device gets its
// certificate after `estgw requests approve`; the same through libest's estproxy,
// which passes the 202 and its Retry-After down.
import test from 'ava';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { freePort } from '../client/support/net.js';
import { scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { listed, requestsCli } from '../approval/helpers.js';
import { ESTPROXY_LABELS, ESTPROXY_USERS, LIBEST_BIN, deviceKey, estclient, estproxyCertificate, explainSkip, failureOf, libest, startEstproxy } from './libest.js';

explainSkip('estclient against a label with manual approval');

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let key: string;
test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-approval-');
  gw = await startTestGateway({ labels: { default: { approval: 'manual' } }, extra: { approval: { retry_after: 1 } } });
  key = await deviceKey(tmp.path('device.key.pem'));
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const enrollLines = () => gw.audit().filter((l) => l.op === 'simpleenroll' && l.subject !== 'CN=estgw-test-tls');

let certFile: string;
libest('estclient -e on a held request: 202, it sleeps Retry-After, asks once more (401 then Basic again), fails with EST_ERR_CA_ENROLL_RETRY; after approve, the same -x gets the certificate', async (t) => {
  const cli = requestsCli({ dataDir: gw.dataDir });
  const args = ['-e', '-v', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'libest-held', '--pem-output'];
  const held = await estclient(gw.port, gw.caFile, tmp.path('held'), args);
  t.regex(failureOf(held) ?? '', /EST_ERR_CA_ENROLL_RETRY/, held.output);
  t.regex(held.output, /Retry-After delay seconds = 1\b/, 'it read the Retry-After seconds');
  await t.throwsAsync(readFile(tmp.path('held/cert-0-0.pem')));
  // each attempt is a new connection that starts without credentials
  t.deepEqual(enrollLines().map((l) => l.status), [401, 202, 401, 202]);
  const rows = await listed(t, cli);
  t.is(rows.length, 1, 'the second attempt found the first one\'s entry');
  t.like(rows[0], { state: 'pending', subject: 'CN=libest-held', identity: 'user:estuser', polls: 2 });

  const approved = await cli('approve', rows[0]!.id, '--by', 'operator-test');
  t.is(approved.code, 0, approved.stderr);
  const again = await estclient(gw.port, gw.caFile, tmp.path('again'), args);
  t.is(failureOf(again), undefined, again.output);
  certFile = tmp.path('again/cert-0-0.pem');
  const cert = new X509Certificate(await again.file('cert-0-0.pem'));
  t.is(cert.subject, 'CN=libest-held');
  t.true(cert.publicKey.equals(createPublicKey(await readFile(key, 'utf8'))));
  t.is(enrollLines().at(-1)?.status, 200);
  t.like((await listed(t, cli, '--all')).find((r) => r.id === rows[0]!.id), { decidedBy: 'operator-test' });
});

libest('estclient -e with the same key after the approval was used: held again (an approval is good for one certificate)', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('third'), ['-e', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'libest-held', '--pem-output']);
  t.regex(failureOf(r) ?? '', /EST_ERR_CA_ENROLL_RETRY/, r.output);
  t.is((await listed(t, requestsCli({ dataDir: gw.dataDir }))).filter((x) => x.state === 'pending').length, 1);
});

libest('estclient -r with the approved certificate: renewed at once (approval_exempt_renewals, the default)', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('r'), ['-r', '-c', certFile, '-k', key, '--pem-output']);
  t.is(failureOf(r), undefined, r.output);
  t.is(new X509Certificate(await r.file('cert-0-0.pem')).subject, 'CN=libest-held');
  t.is(gw.audit().filter((l) => l.op === 'simplereenroll').at(-1)?.status, 200);
});

libest('estclient → estproxy → a held label: estproxy passes 202 and Retry-After down, the request is queued as the proxy\'s (RA), approve, rerun: issued', async (t) => {
  const held = await startTestGateway({
    users: ESTPROXY_USERS,
    labels: { ...ESTPROXY_LABELS, default: { ...ESTPROXY_LABELS.default, approval: 'manual' } },
    extra: { approval: { retry_after: 1 } },
  });
  t.teardown(() => held.close());
  await estproxyCertificate(held, tmp.path('proxy.pem'), tmp.path('proxy.key.pem'));
  const proxy = await startEstproxy({ cert: tmp.path('proxy.pem'), key: tmp.path('proxy.key.pem'), trustFile: held.caFile, port: await freePort(), upstreamPort: held.port, cwd: tmp.dir });
  t.teardown(() => proxy.stop());
  const cli = requestsCli({ dataDir: held.dataDir });
  const args = ['-e', '-v', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'held-behind-estproxy', '--pem-output'];

  const first = await estclient(proxy.port, held.caFile, tmp.path('px-held'), args);
  t.regex(failureOf(first) ?? '', /EST_ERR_CA_ENROLL_RETRY/, `${first.output}\n${proxy.log().slice(-2000)}`);
  t.regex(first.output, /Retry-After delay seconds = 1\b/, 'the gateway\'s Retry-After, through the proxy');
  const rows = await listed(t, cli);
  t.is(rows.length, 1);
  t.like(rows[0], { state: 'pending', subject: 'CN=held-behind-estproxy', identity: 'cert:ra/estproxy', polls: 2 });

  t.is((await cli('approve', rows[0]!.id, '--by', 'operator-test')).code, 0);
  const again = await estclient(proxy.port, held.caFile, tmp.path('px-again'), args);
  t.is(failureOf(again), undefined, again.output);
  t.is(new X509Certificate(await again.file('cert-0-0.pem')).subject, 'CN=held-behind-estproxy');
});
