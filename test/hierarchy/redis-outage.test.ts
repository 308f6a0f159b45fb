// Redis under the middle layer dies during traffic through the whole hierarchy
// and comes back: no request fails (the parent is up the whole time), nothing is
// islanded or lost, and the shared cache is filled again once Redis returns.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, startRedis, uniquePrefix } from '../cache/helpers.js';
import { DEV_AUTH, estUrl } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { caCertsPem, startHierarchy } from './helpers.js';
import { chainCacheKey } from '../../src/server/gateway.js';

test('killing and restarting the middle layer\'s Redis under enroll + cacerts traffic fails no request and loses nothing', async (t) => {
  const port = await freePort();
  let redis = await startRedis(t, port);
  const prefix = uniquePrefix();
  // short refresh intervals so that chains are fetched and written again while the test runs
  const h = await startHierarchy({
    redis: { url: `redis://127.0.0.1:${port}`, key_prefix: prefix },
    middleUpstream: { cacerts_refresh: 1 },
    bottomUpstream: { cacerts_refresh: 1 },
  });
  t.teardown(() => h.close());
  const direct = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  direct.on('error', () => {});
  t.teardown(() => direct.disconnect());
  // the middle's: it forwards default to the top
  const chainKey = `${prefix}cacerts:${chainCacheKey('default', h.middles[0]!.config.labels.default!)}`;
  const topChain = (await caCertsPem(h.top, h.rootPem)).certs.map((c) => c.raw.toString('base64'));
  t.deepEqual((JSON.parse((await direct.get(chainKey)) ?? '{}') as { certs?: string[] }).certs, topChain, 'shared before the outage');

  const failures: string[] = [];
  const enrolled: string[] = [];
  let requests = 0;
  let phase: 'before' | 'outage' | 'after' = 'before';
  const during = { before: 0, outage: 0, after: 0 };
  let stop = false;
  const check = (what: string, res: { status: number; body: Buffer }) => {
    requests++;
    during[phase]++;
    if (res.status !== 200) failures.push(`${phase} ${what}: ${res.status} ${res.body.toString().trim()}`);
  };
  const traffic = (async () => {
    const started = Date.now();
    for (let i = 0; i < 400 && !stop && Date.now() - started < 20_000; i++) {
      const csr = await makeCsr(`outage-${i}`);
      const res = await httpsRequest(estUrl(h.bottom, 'simpleenroll'), { ca: h.rootPem, body: csr.b64, headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH } });
      check(`enroll ${i}`, res);
      if (res.status === 200) enrolled.push(`outage-${i}`);
      for (const gw of [h.bottom, ...h.middles]) check(`cacerts ${gw.port}`, await httpsRequest(`${gw.url}/cacerts`, { ca: h.rootPem }));
      await sleep(20);
    }
  })();

  await sleep(800);
  phase = 'outage';
  await redis.kill();
  await sleep(2_500); // past cacerts_refresh: the middle refreshes from the top and cannot write to Redis
  phase = 'after';
  redis = await startRedis(t, port);
  // the restarted Redis is empty; the next background refresh writes the chain again
  let refilled = false;
  for (let waited = 0; waited < 8_000 && !refilled; waited += 100) {
    await sleep(100);
    const raw = await direct.get(chainKey).catch(() => null);
    refilled = raw !== null && JSON.stringify((JSON.parse(raw) as { certs?: string[] }).certs) === JSON.stringify(topChain);
  }
  await sleep(300); // some traffic with Redis back
  stop = true;
  await traffic;

  t.deepEqual(failures, []);
  t.true(refilled, 'Redis holds the chain again');
  t.true(during.outage >= 10 && during.after >= 5, JSON.stringify(during));
  // nothing islanded, nothing lost: every enrollment was issued by the top, once
  t.false(h.bottom.audit().some((l) => l.islanded));
  const topIssued = h.top.audit().filter((l) => l.op === 'simpleenroll' && l.status === 200).map((l) => String(l.subject).replace(/^CN=/, ''));
  t.deepEqual(topIssued.sort(), [...enrolled].sort());
  t.is(requests, enrolled.length * 4);
  // each replica logged the outage and the recovery
  for (const m of h.middles) {
    const msgs = m.logs.map((l) => String(l.msg));
    const down = msgs.findIndex((x) => x.includes('redis unavailable'));
    t.true(down >= 0 && msgs.findIndex((x, i) => i > down && x.includes('redis is back')) > down, `replica ${m.port}`);
  }
  t.log(`${requests} requests: ${JSON.stringify(during)}`);
});
