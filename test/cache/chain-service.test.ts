// CaChainService on a fake clock: refresh-ahead, single-flight across callers
// and replicas, stale-while-failing, and the error when nothing can be served.
import test, { type ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CaChainService, type CaChainServiceOptions } from '../../src/cache/chain-service.js';
import type { CaChainCache } from '../../src/cache/ca-chain-cache.js';
import { MemoryCaChainCache } from '../../src/cache/memory-cache.js';
import { RedisCaChainCache } from '../../src/cache/redis-cache.js';
import { EstError, isEstError } from '../../src/errors.js';
import { captureLogger, deleteKeys, der, eventually, SHARED_REDIS_URL, uniquePrefix } from './helpers.js';

const OLD = [der(1), der(0xaa)];
const NEW = [der(2), der(0xaa)];

/** A fetch result the test releases when it chooses. */
function gate<T>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** A parent whose answers the test scripts; counts fetches. */
class Parent {
  calls = 0;
  answer: () => Promise<Buffer[]> = async () => OLD;
  readonly fetch = () => {
    this.calls++;
    return this.answer();
  };
  refuse(reason: string): void {
    this.answer = async () => {
      throw new Error(reason);
    };
  }
}

function setup(t: ExecutionContext, opts: Partial<CaChainServiceOptions> = {}, cache?: CaChainCache) {
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const parent = new Parent();
  const log = captureLogger();
  const service = new CaChainService(cache ?? new MemoryCaChainCache({ now }), {
    refreshAfterMs: 60_000,
    maxStaleMs: 3_600_000,
    retryFailedAfterMs: 5_000,
    now,
    logger: log.logger,
    ...opts,
  });
  service.register('ra', parent.fetch);
  t.teardown(() => service.close());
  return { clock, parent, service, log };
}

test('serves a fresh cached chain without fetching', async (t) => {
  const { clock, parent, service } = setup(t);
  t.deepEqual(await service.get('ra'), OLD);
  clock.now += 59_000;
  parent.answer = async () => NEW;
  t.deepEqual(await service.get('ra'), OLD);
  t.is(parent.calls, 1);
});

test('serves an aging chain at once and refreshes it in the background', async (t) => {
  const { clock, parent, service } = setup(t);
  await service.get('ra');
  clock.now += 61_000;
  const pending = gate<Buffer[]>();
  parent.answer = () => pending.promise;
  t.deepEqual(await service.get('ra'), OLD); // answered while the parent has not
  t.deepEqual(await service.get('ra'), OLD);
  t.is(parent.calls, 2); // one refresh, however many requests came meanwhile
  pending.open(NEW);
  t.true(await eventually(async () => (await service.get('ra'))[0]!.equals(NEW[0]!)));
  t.is(parent.calls, 2);
});

/** Grants every lock, as if each caller were a replica of its own: only in-process single-flight is left. */
class LocklessCache extends MemoryCaChainCache {
  override async tryLock(): Promise<() => Promise<void>> {
    return async () => {};
  }
}

test('collapses concurrent misses in one process into one fetch', async (t) => {
  const { parent, service } = setup(t, {}, new LocklessCache());
  const pending = gate<Buffer[]>();
  parent.answer = () => pending.promise;
  const gets = Array.from({ length: 20 }, () => service.get('ra'));
  pending.open(NEW);
  for (const chain of await Promise.all(gets)) t.deepEqual(chain, NEW);
  t.is(parent.calls, 1);
});

test('two replicas on one Redis fetch once', async (t) => {
  const prefix = uniquePrefix();
  const admin = new Redis(SHARED_REDIS_URL);
  const caches = [0, 1].map(() => new RedisCaChainCache({ url: SHARED_REDIS_URL, keyPrefix: prefix }));
  t.teardown(async () => {
    await Promise.all(caches.map((c) => c.close()));
    await deleteKeys(admin, prefix);
    await admin.quit();
  });
  let calls = 0;
  const replicas = caches.map((cache) => {
    const service = new CaChainService(cache, { refreshAfterMs: 60_000, maxStaleMs: 3_600_000, lockTtlMs: 2_000 });
    service.register('ra', async () => {
      calls++;
      await sleep(100); // long enough for the other replica to find the lock taken
      return NEW;
    });
    t.teardown(() => service.close());
    return service;
  });
  const chains = await Promise.all([...replicas, ...replicas].map((r) => r.get('ra')));
  for (const chain of chains) t.deepEqual(chain, NEW);
  t.is(calls, 1);
});

test('fetches anyway when the lock holder never delivers', async (t) => {
  const cache = new MemoryCaChainCache();
  const { parent, service } = setup(t, { lockTtlMs: 200 }, cache);
  await cache.tryLock('ra', 60_000); // a replica that took the lock and died
  const started = Date.now();
  t.deepEqual(await service.get('ra'), OLD);
  t.is(parent.calls, 1);
  const waited = Date.now() - started;
  t.true(waited >= 150 && waited < 1_000, `waited ${waited} ms for the lock holder`);
});

test('serves the stale chain while the parent fails, warning once, until maxStaleMs', async (t) => {
  const { clock, parent, service, log } = setup(t);
  await service.get('ra');
  parent.refuse('parent refused');
  for (let i = 0; i < 5; i++) {
    clock.now += 10 * 60_000;
    t.deepEqual(await service.get('ra'), OLD);
    await sleep(1); // let the background refresh fail
  }
  t.is(parent.calls, 6);
  t.is(log.count('cannot fetch the CA chain'), 1);

  clock.now += 60 * 60_000; // past maxStaleMs: nothing left to serve
  const err = await t.throwsAsync(service.get('ra'), { instanceOf: EstError });
  t.true(isEstError(err, 'unavailable'));
});

test('backs off background refreshes after a failure', async (t) => {
  const { clock, parent, service } = setup(t);
  await service.get('ra');
  parent.refuse('parent refused');
  clock.now += 61_000;
  await service.get('ra');
  await sleep(1);
  await service.get('ra');
  await service.get('ra');
  t.is(parent.calls, 2);
  clock.now += 5_000;
  await service.get('ra');
  t.is(parent.calls, 3);
});

test('reports unavailable with Retry-After when nothing is cached', async (t) => {
  const { parent, service } = setup(t);
  parent.refuse('connect ECONNREFUSED');
  const err = await t.throwsAsync(service.get('ra'), { instanceOf: EstError });
  t.is(err?.kind, 'unavailable');
  t.is(err?.retryAfter, 30);
  t.is(err?.message, 'CA chain for label "ra" is unavailable: connect ECONNREFUSED');

  parent.answer = async () => [];
  t.regex((await t.throwsAsync(service.get('ra')))?.message ?? '', /empty chain/);

  t.is((await t.throwsAsync(service.get('unknown'), { instanceOf: EstError }))?.kind, 'notFound');
});

test('recovers when the parent is back', async (t) => {
  const { clock, parent, service, log } = setup(t);
  parent.refuse('down');
  await t.throwsAsync(service.get('ra'));
  parent.answer = async () => OLD;
  t.deepEqual(await service.get('ra'), OLD);

  parent.refuse('down again');
  clock.now += 61_000;
  t.deepEqual(await service.get('ra'), OLD);
  await sleep(1);
  parent.answer = async () => NEW;
  clock.now += 5_000;
  await service.get('ra');
  t.true(await eventually(async () => (await service.get('ra'))[0]!.equals(NEW[0]!)));
  t.is(log.count('cannot fetch the CA chain'), 2); // once per outage
  t.is(log.count('works again'), 2);
});
