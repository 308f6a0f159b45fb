// RFC 7030 §4.4 serverkeygen through a two-layer hierarchy on loopback: the key
// made at the top would pass unencrypted through the forwarding layer, so a
// forwarding label offers serverkeygen only with forward_serverkeygen = true.
// Labels that issue locally keep it.
import test from 'ava';
import { validateConfig } from '../../src/config/load.js';
import { scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, serverKeygenAnswer } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { raFiles } from './helpers.js';

let scratch: Awaited<ReturnType<typeof scratchDir>>;
let top: TestGateway;
let middle: TestGateway;

test.before(async () => {
  scratch = await scratchDir('estgw-fwd-skg-');
  top = await startTestGateway({
    cas: {
      root: { create: 'root', subject: '/O=EST Test/CN=skg root' },
      issuing: { create: 'subordinate', parent: 'root', subject: '/O=EST Test/CN=skg issuing CA' },
    },
    labels: { default: { ca: 'issuing', auth: ['cert'], grants: [{ identity: '*', common_names: ['*'] }] } },
  });
  const ra = await raFiles(top.gateway.pki.cas.get('issuing')!, 'skg-middle-ra', scratch.dir);
  const upstream = { url: top.url, trust: top.caFile, ...ra, timeout: 5, connect_timeout: 2 };
  middle = await startTestGateway({
    labels: {
      default: { mode: 'forward', upstream },
      keys: { mode: 'forward', upstream, forward_serverkeygen: true },
      island: { mode: 'forward', fallback: 'issue', ca: 'root', upstream },
      local: {},
    },
  });
});

test.after.always(async () => {
  await middle?.close();
  await top?.close();
  await scratch?.remove();
});

/** What the top layer's audit recorded for this subject. */
const atTop = (cn: string) => top.audit().filter((l) => l.subject === `CN=${cn}`);

test('a forwarding label refuses serverkeygen by default: 501 text/plain, and the top never generates a key', async (t) => {
  for (const label of [undefined, 'island']) {
    const cn = `skg-refused-${label ?? 'default'}`;
    const res = await enroll(middle, (await makeCsr(cn)).b64, { op: 'serverkeygen', ...(label ? { label } : {}) });
    assertReason(t, res, 501, /forward_serverkeygen/);
    t.deepEqual(atTop(cn), [], `${label ?? 'default'}: nothing reached the top`);
  }
});

test('the refusal comes before anything else: no credentials needed to learn that the label does not offer it', async (t) => {
  const res = await enroll(middle, (await makeCsr('skg-anon')).b64, { op: 'serverkeygen', auth: null });
  assertReason(t, res, 501);
});

test('forward_serverkeygen = true: the key and the certificate the top made reach the device', async (t) => {
  const res = await enroll(middle, (await makeCsr('skg-forwarded')).b64, { op: 'serverkeygen', label: 'keys' });
  t.is(res.status, 200, res.body.toString());
  const answer = serverKeygenAnswer(t, res.headers['content-type']!, res.body);
  t.is(answer.cert.subject, 'CN=skg-forwarded');
  t.is(answer.cert.issuer, 'O=EST Test\nCN=skg issuing CA', 'the top signed');
  t.like(atTop('skg-forwarded').at(-1), { op: 'serverkeygen', status: 200, ra: true });
});

test('forwarding labels keep simpleenroll, and a label that issues locally keeps serverkeygen', async (t) => {
  t.is((await enroll(middle, (await makeCsr('skg-enroll')).b64)).status, 200);
  const res = await enroll(middle, (await makeCsr('skg-local')).b64, { op: 'serverkeygen', label: 'local' });
  t.is(res.status, 200, res.body.toString());
  const answer = serverKeygenAnswer(t, res.headers['content-type']!, res.body);
  t.is(answer.cert.issuer, 'CN=est-gateway CA');
  t.deepEqual(atTop('skg-local'), []);
});

test('configuration: forward_serverkeygen on a label that issues locally is refused at start (it would mean nothing)', (t) => {
  t.throws(() => validateConfig({ labels: { default: { forward_serverkeygen: true } } }), { message: /forward_serverkeygen applies only to mode = "forward"/ });
});
