// Kills a private redis-server under traffic: CA chains keep being served from
// memory, and once Redis is back the cache writes to it again.
import test from 'ava';
import { Redis } from 'ioredis';
import { CaChainService } from '../../src/cache/chain-service.js';
import { MemoryCaChainCache } from '../../src/cache/memory-cache.js';
import { RedisCaChainCache } from '../../src/cache/redis-cache.js';
import { ResilientCaChainCache } from '../../src/cache/resilient-cache.js';
import { captureLogger, der, eventually, freePort, startRedis, uniquePrefix } from './helpers.js';

test('serves from memory while Redis is down and shares through Redis again once it is back', async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const prefix = uniquePrefix();
  const first = await startRedis(t, port);

  const clock = { now: Date.now() };
  const now = () => clock.now;
  // Replica A fetches; replica B only ever reads what A put in Redis, and its own parent is down.
  const logs = [captureLogger(), captureLogger()];
  const [cacheA, cacheB] = logs.map(
    ({ logger }) => new ResilientCaChainCache(new RedisCaChainCache({ url, keyPrefix: prefix }), new MemoryCaChainCache(), logger),
  ) as [ResilientCaChainCache, ResilientCaChainCache];
  const logged = (msg: string) => logs.map((l) => l.count(msg));
  const a = new CaChainService(cacheA, { refreshAfterMs: 60_000, maxStaleMs: 3_600_000, now });
  const b = new CaChainService(cacheB, { refreshAfterMs: 60_000, maxStaleMs: 3_600_000, now });
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
    await Promise.all([cacheA.close(), cacheB.close()]);
  });
  let fetches = 0;
  const chain = [der(1), der(2)];
  a.register('ra', async () => {
    fetches++;
    return chain;
  });
  b.register('ra', async () => {
    throw new Error('parent unreachable');
  });

  t.deepEqual(await a.get('ra'), chain);
  t.deepEqual(await b.get('ra'), chain); // from Redis, and now also in B's memory

  // Traffic on both replicas while Redis dies.
  let answered = 0;
  let slowest = 0;
  let stop = false;
  const traffic = (async () => {
    for (let i = 0; i < 5_000 && !stop; i++) {
      const started = Date.now();
      t.deepEqual(await (i % 2 ? a : b).get('ra'), chain);
      slowest = Math.max(slowest, Date.now() - started);
      answered++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  await eventually(() => answered >= 20);
  await first.kill();
  const atOutage = answered;
  const outageStart = Date.now();
  // Long enough for reconnect attempts to fail under the traffic.
  const outageOver = () => answered >= atOutage + 50 && Date.now() - outageStart >= 300;
  await eventually(outageOver, 3_000);
  stop = true;
  await traffic;
  t.true(outageOver(), 'traffic went on while Redis was down');
  t.true(slowest < 250, `slowest get took ${slowest} ms`);
  t.is(fetches, 1); // every answer came from the cache
  t.deepEqual(logged('redis unavailable'), [1, 1]); // one warning per replica, however many requests failed over

  // Redis comes back empty; once both have reconnected (each at its own pace: ioredis backs off
  // per client), the chain is in Redis again.
  await startRedis(t, port);
  const direct = new Redis(port, '127.0.0.1');
  t.teardown(() => direct.quit());
  const shared = await eventually(async () => {
    clock.now += 61_000; // each round makes the chain due for a refresh
    t.deepEqual(await a.get('ra'), chain);
    t.deepEqual(await b.get('ra'), chain);
    const back = logged('redis is back').every((n) => n === 1);
    return back && (await direct.get(`${prefix}cacerts:ra`)) !== null;
  }, 10_000);
  t.true(shared, 'the chain reached the restarted Redis');
  const stored = JSON.parse((await direct.get(`${prefix}cacerts:ra`)) ?? '{}') as { certs?: string[] };
  t.deepEqual(stored.certs, chain.map((c) => c.toString('base64')));
  t.true(fetches >= 2);
  t.deepEqual(logged('redis is back'), [1, 1]);
  t.deepEqual(logged('redis unavailable'), [1, 1]);
});

test('a Redis that comes back empty gets the chain back from the first replica that still holds it, with the remaining lifetime', async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const prefix = uniquePrefix();
  const first = await startRedis(t, port);
  const { logger, count } = captureLogger();
  const cacheA = new ResilientCaChainCache(new RedisCaChainCache({ url, keyPrefix: prefix }), new MemoryCaChainCache(), logger);
  const cacheB = new ResilientCaChainCache(new RedisCaChainCache({ url, keyPrefix: prefix }), new MemoryCaChainCache());
  t.teardown(async () => {
    await Promise.all([cacheA.close(), cacheB.close()]);
  });
  const chain = { certs: [der(7), der(8)], fetchedAt: Date.now() };
  await cacheA.set('ra', chain, 3_600_000);

  await first.kill();
  await startRedis(t, port); // empty, as a restarted Redis without persistence is
  t.true(await eventually(async () => (await cacheA.get('ra')) !== undefined && count('CA chain missing from redis: restored it from memory') === 1, 5000));

  // replica B never saw the chain: it reads it from Redis, not from a parent
  t.deepEqual((await cacheB.get('ra'))?.certs, chain.certs);
  const probe = new Redis(port, '127.0.0.1');
  t.teardown(() => probe.disconnect());
  const keys = await probe.keys(`${prefix}*`);
  t.is(keys.length, 1);
  const ttl = await probe.pttl(keys[0]!);
  t.true(ttl > 3_500_000 && ttl <= 3_600_000, `ttl ${ttl}`);
});
