// Issue 12 across layers (test/hierarchy/helpers.ts: top issues, two middle
// replicas forward as one RA, the bottom forwards). Held at the bottom, two
// bottom replicas sharing Redis: nothing goes up before the operator approves,
// then the parent sees an ordinary RA enrollment; rejected; expired. Held at
// the top: the 202 reaches the device through both RAs, and so does the
// certificate once the top's operator approves.
import test from 'ava';
import { Redis } from 'ioredis';
import { SHARED_REDIS_URL, deleteKeys, eventually, uniquePrefix } from '../cache/helpers.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import type { TestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { MIDDLE_RA, startHierarchy } from '../hierarchy/helpers.js';
import { heldId, listed, requestsCli } from './helpers.js';

const prefixes: string[] = [];
test.after.always(async () => {
  const redis = new Redis(SHARED_REDIS_URL);
  for (const p of prefixes) await deleteKeys(redis, p);
  await redis.quit();
});
const prefix = () => {
  const p = uniquePrefix();
  prefixes.push(p);
  return p;
};

const enrollsAt = (gw: TestGateway, subject: string) => gw.audit().filter((l) => l.op === 'simpleenroll' && l.subject === subject);

test.serial('held at the bottom (two replicas on one Redis): approved, rejected, expired; the parent sees only the approved one, as an RA enrollment', async (t) => {
  const bottomPrefix = prefix();
  const h = await startHierarchy({
    redis: { url: SHARED_REDIS_URL, key_prefix: prefix() },
    bottomReplicas: 2,
    bottomRedis: { url: SHARED_REDIS_URL, key_prefix: bottomPrefix },
    bottomLabel: { approval: 'manual' },
    bottomExtra: { approval: { retry_after: 4, expiry: '20s' } },
  });
  t.teardown(() => h.close());
  const [b1, b2] = h.bottoms as [TestGateway, TestGateway];
  const cli = requestsCli({ dataDir: b1.dataDir, redis: { url: SHARED_REDIS_URL, prefix: bottomPrefix } });

  // the third device first: its expiry runs while the others are decided
  const expiring = await makeCsr('plc-h3');
  const expiringId = heldId(t, await enroll(b1, expiring.b64), 4);

  const device = await makeCsr('plc-h1');
  const id = heldId(t, await enroll(b1, device.b64), 4);
  t.is(heldId(t, await enroll(b2, device.b64), 4), id);
  // the bottom held it before forwarding anything
  for (const gw of [h.top, ...h.middles]) t.is(enrollsAt(gw, 'CN=plc-h1').length, 0);

  t.is((await cli('approve', id, '--by', 'line-3-operator')).code, 0);
  const cert = issuedCert(t, await enroll(b2, device.b64));
  t.is(cert.issuer, 'O=EST Test\nCN=top issuing CA');
  // the top saw an ordinary enrollment by the middle's RA, and recorded it
  const [atTop] = enrollsAt(h.top, 'CN=plc-h1');
  t.like(atTop, { status: 200, identity: `cert:ra/${MIDDLE_RA}`, ra: true, outcome: 'issued' });
  t.is([...h.top.gateway.ledger!.store.list({ subject: 'CN=plc-h1' })].length, 1);
  // consumed: the next poll is a new request, held again, and nothing more goes up
  t.not(heldId(t, await enroll(b1, device.b64), 4), id);
  t.is(enrollsAt(h.top, 'CN=plc-h1').length, 1);

  const rejected = await makeCsr('plc-h2');
  const rid = heldId(t, await enroll(b2, rejected.b64), 4);
  t.is((await cli('reject', rid, '--reason', 'not on the commissioning list')).code, 0);
  assertReason(t, await enroll(b1, rejected.b64), 403, /rejected by an operator: not on the commissioning list/);
  t.is(enrollsAt(h.top, 'CN=plc-h2').length, 0);

  const expired = () => [b1, b2].some((b) => b.logs.some((l) => l.msg === 'approval request expired' && l.id === expiringId));
  t.true(await eventually(expired, 60_000));
  t.like((await listed(t, cli, '--all')).find((r) => r.id === expiringId), { state: 'expired' });
  t.not(heldId(t, await enroll(b2, expiring.b64), 4), expiringId);
  t.is(enrollsAt(h.top, 'CN=plc-h3').length, 0);
});

test.serial('held at the top: the 202 and its Retry-After reach the device through two RAs, then the certificate does', async (t) => {
  const h = await startHierarchy({
    redis: { url: SHARED_REDIS_URL, key_prefix: prefix() },
    topLabel: { approval: 'manual' },
    topExtra: { approval: { retry_after: 5 } },
  });
  t.teardown(() => h.close());
  const cli = requestsCli({ dataDir: h.top.dataDir });
  const device = await makeCsr('plc-top');
  const first = await enroll(h.bottom, device.b64);
  t.is(first.status, 202, first.body.toString());
  t.is(first.headers['retry-after'], '5');
  t.is((await enroll(h.bottom, device.b64)).status, 202);

  const rows = await listed(t, cli);
  t.is(rows.length, 1);
  t.like(rows[0], { state: 'pending', subject: 'CN=plc-top', identity: `cert:ra/${MIDDLE_RA}`, polls: 2 });
  const shown = (await cli('show', rows[0]!.id)).stdout.toString();
  t.regex(shown, new RegExp(`^through RA: +CN=${MIDDLE_RA} issued by CN=top issuing CA,O=EST Test$`, 'm'));

  t.is((await cli('approve', rows[0]!.id)).code, 0);
  const cert = issuedCert(t, await enroll(h.bottom, device.b64));
  t.is(cert.subject, 'CN=plc-top');
  // issued by the top, not by the bottom's fallback CA
  t.is(cert.issuer, 'O=EST Test\nCN=top issuing CA');
  t.is([...h.top.gateway.ledger!.store.list({ subject: 'CN=plc-top' })].length, 1);
  // consumed at the top: the same request again is held again, through both RAs
  t.is((await enroll(h.bottom, device.b64)).status, 202);
  t.is([...h.top.gateway.ledger!.store.list({ subject: 'CN=plc-top' })].length, 1);
});
