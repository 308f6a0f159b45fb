// The sub-CA renewal schedule, with an injected clock and timers: no sleeping.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { SubCaRenewer } from '../../src/server/subca-renewal.js';
import { silentLogger } from '../../src/util/log.js';

const DAY = 86_400_000;
let dir: string;
let first: CaMaterial;
let second: CaMaterial;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-renewer-'));
  first = await createRootCa('a', join(dir, 'a'), { subject: [['CN', 'gen 1']], days: 30 });
  second = await createRootCa('b', join(dir, 'b'), { subject: [['CN', 'gen 2']], days: 30 });
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

function harness(replace: () => Promise<CaMaterial>) {
  let now = Date.parse(first.cert.validFrom);
  const timers: Array<{ fn: () => void; at: number; cancelled: boolean }> = [];
  const renewed: string[] = [];
  const renewer = new SubCaRenewer({
    cfg: validateConfig({
      server: { data_dir: dir, tls_issuer: 'tls' },
      cas: { tls: {}, bottom: { create: 'request', renew_at: 0.5, request: { url: 'https://127.0.0.1:1/.well-known/est', trust: '/dev/null' } } },
      labels: { default: { ca: 'bottom' } },
    }),
    logger: silentLogger(),
    replace,
    onRenewed: async (n) => void renewed.push(n),
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { fn, at: now + ms, cancelled: false };
      timers.push(t);
      return { cancel: () => (t.cancelled = true) };
    },
  });
  /** Moves the clock to the next timer and fires it. */
  const tick = async () => {
    const t = timers.filter((x) => !x.cancelled).sort((a, b) => a.at - b.at)[0]!;
    timers.splice(timers.indexOf(t), 1);
    now = t.at;
    t.fn();
    await new Promise((r) => setImmediate(r));
  };
  return { renewer, timers, renewed, tick, setNow: (n: number) => (now = n), getNow: () => now };
}

test('renews at renew_at of the lifetime, then schedules the new generation', async (t) => {
  let calls = 0;
  const h = harness(async () => {
    calls++;
    return second;
  });
  h.renewer.start(new Map([['bottom', first]]));
  const due = h.renewer.renewAt('bottom', first.cert);
  const lifetime = Date.parse(first.cert.validTo) - Date.parse(first.cert.validFrom);
  t.true(Math.abs(due - (Date.parse(first.cert.validFrom) + lifetime / 2)) < 1000);
  await h.tick();
  t.is(calls, 1);
  t.deepEqual(h.renewed, ['bottom']);
  const next = h.timers.filter((x) => !x.cancelled).at(-1)!;
  t.is(next.at, h.renewer.renewAt('bottom', second.cert));
  h.renewer.stop();
});

test('a parent that cannot be reached is retried, more often as expiry nears, within 1 min..1 h', async (t) => {
  let calls = 0;
  const h = harness(async () => {
    calls++;
    throw new Error('parent unreachable');
  });
  h.renewer.start(new Map([['bottom', first]]));
  await h.tick();
  t.is(calls, 1);
  const retry = h.timers.filter((x) => !x.cancelled).at(-1)!;
  const gap = retry.at - h.getNow();
  t.true(gap >= 60_000 && gap <= 3_600_000, `retry in ${gap} ms`);
  await h.tick();
  t.is(calls, 2);
  t.deepEqual(h.renewed, []);
  h.renewer.stop();
});

test('waits longer than setTimeout can in steps, without renewing early', async (t) => {
  let calls = 0;
  const h = harness(async () => {
    calls++;
    return second;
  });
  const long = await createRootCa('c', join(dir, 'c'), { subject: [['CN', 'long']], days: 400 });
  h.setNow(Date.parse(long.cert.validFrom));
  h.renewer.start(new Map([['bottom', long]]));
  await h.tick(); // first step: 2^31-1 ms, about 24.8 days
  t.is(calls, 0);
  while (calls === 0) await h.tick();
  t.true(h.getNow() >= h.renewer.renewAt('bottom', long.cert));
  t.true(h.getNow() < h.renewer.renewAt('bottom', long.cert) + DAY);
  h.renewer.stop();
});
