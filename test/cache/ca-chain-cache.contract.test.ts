// One contract for every CaChainCache, run against the in-process cache (with
// a fake clock) and a real Redis (with short real TTLs).
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { CaChainCache } from '../../src/cache/ca-chain-cache.js';
import { MemoryCaChainCache } from '../../src/cache/memory-cache.js';
import { RedisCaChainCache } from '../../src/cache/redis-cache.js';
import type { Logger } from '../../src/util/log.js';
import { captureLogger, deleteKeys, der, SHARED_REDIS_URL, uniquePrefix } from './helpers.js';

interface Subject {
  cache: CaChainCache;
  /** Lets `ms` pass for the cache. */
  pass(ms: number): Promise<void>;
}

const admin = new Redis(SHARED_REDIS_URL);
test.after.always(() => admin.quit());

const TTL = 150;

const subjects: Record<string, (t: ExecutionContext) => Subject> = {
  memory(t) {
    let now = 1_700_000_000_000;
    const cache = new MemoryCaChainCache({ now: () => now });
    t.teardown(() => cache.close());
    return { cache, pass: async (ms) => void (now += ms) };
  },
  redis: (t) => ({ cache: redisCache(t).cache, pass: (ms) => sleep(ms) }),
};

/** A Redis cache under a prefix of its own, closed and its keys deleted with the test. */
function redisCache(t: ExecutionContext, logger?: Logger): { cache: RedisCaChainCache; prefix: string } {
  const prefix = uniquePrefix();
  const cache = new RedisCaChainCache({ url: SHARED_REDIS_URL, keyPrefix: prefix, logger });
  t.teardown(async () => {
    await cache.close();
    await deleteKeys(admin, prefix);
  });
  return { cache, prefix };
}

for (const [kind, make] of Object.entries(subjects)) {
  const contract = (title: string, body: (t: ExecutionContext, s: Subject) => Promise<void>) =>
    test(`${kind}: ${title}`, async (t) => {
      const subject = make(t);
      t.is(subject.cache.kind as string, kind);
      await body(t, subject);
    });

  contract('returns what was set, Buffers intact', async (t, { cache }) => {
    const certs = [der(0, 1, 2, 0xff), randomBytes(700), Buffer.alloc(3)];
    await cache.set('ra', { certs, fetchedAt: 1234 }, 60_000);
    const got = await cache.get('ra');
    t.is(got?.fetchedAt, 1234);
    t.true(got?.certs.every((c) => Buffer.isBuffer(c)));
    t.deepEqual(got?.certs.map((c) => c.toString('hex')), certs.map((c) => c.toString('hex')));

    await cache.set('ra', { certs: [der(9)], fetchedAt: 5678 }, 60_000);
    t.deepEqual(await cache.get('ra'), { certs: [der(9)], fetchedAt: 5678 });
  });

  contract('misses a label never set', async (t, { cache }) => {
    await cache.set('ra', { certs: [der(1)], fetchedAt: 1 }, 60_000);
    t.is(await cache.get('other'), undefined);
  });

  contract('drops a chain after maxAgeMs', async (t, { cache, pass }) => {
    await cache.set('ra', { certs: [der(1)], fetchedAt: 1 }, TTL);
    t.truthy(await cache.get('ra'));
    await pass(TTL + 50);
    t.is(await cache.get('ra'), undefined);
  });

  contract('gives a lock to one holder at a time, per label', async (t, { cache }) => {
    const first = await cache.tryLock('ra', 60_000);
    t.truthy(first);
    t.is(await cache.tryLock('ra', 60_000), undefined);
    t.truthy(await cache.tryLock('other', 60_000));
    await first!();
    t.truthy(await cache.tryLock('ra', 60_000));
  });

  contract('frees a lock after its TTL', async (t, { cache, pass }) => {
    t.truthy(await cache.tryLock('ra', TTL));
    await pass(TTL + 50);
    t.truthy(await cache.tryLock('ra', 60_000));
  });

  contract('lets only the holder release a lock', async (t, { cache, pass }) => {
    const expired = await cache.tryLock('ra', TTL);
    await pass(TTL + 50);
    const current = await cache.tryLock('ra', 60_000);
    t.truthy(current);
    await expired!(); // a late release by the previous holder must not free the current one
    t.is(await cache.tryLock('ra', 60_000), undefined);
    await current!();
    t.truthy(await cache.tryLock('ra', 60_000));
  });
}

test('redis: keys and TTLs are laid out as documented', async (t) => {
  const { cache, prefix } = redisCache(t);
  await cache.set('ra', { certs: [der(1, 2)], fetchedAt: 42 }, 60_000);
  t.deepEqual(JSON.parse((await admin.get(`${prefix}cacerts:ra`)) ?? 'null'), { certs: [der(1, 2).toString('base64')], fetchedAt: 42 });
  t.true((await admin.pttl(`${prefix}cacerts:ra`)) > 59_000);
  await cache.tryLock('ra', 60_000);
  t.regex((await admin.get(`${prefix}lock:cacerts:ra`)) ?? '', /^[0-9a-f-]{36}$/);
  t.true((await admin.pttl(`${prefix}lock:cacerts:ra`)) > 59_000);
});

test('redis: a malformed value is a logged miss', async (t) => {
  const { logger, count } = captureLogger();
  const { cache, prefix } = redisCache(t, logger);
  const bad = ['{not json', '[]', '{"certs":"MAo=","fetchedAt":1}', '{"certs":["not base64!"],"fetchedAt":1}', '{"certs":["MAo="]}'];
  for (const [i, value] of bad.entries()) await admin.set(`${prefix}cacerts:l${i}`, value, 'PX', 60_000);
  for (const i of bad.keys()) t.is(await cache.get(`l${i}`), undefined, bad[i]);
  t.is(count('malformed CA chain'), bad.length);
});
