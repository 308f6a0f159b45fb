// The wait before the cluster primary replaces a dead worker, on a clock the
// test moves: doubling while workers die young, back to the start after a
// worker that served for a while.
import test from 'ava';
import { RestartBackoff } from '../../src/server/restart-backoff.js';

const clock = () => {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};

test('workers that die young: 100 ms, doubling, capped at 30 s', (t) => {
  const c = clock();
  const b = new RestartBackoff({ now: c.now });
  const waits: number[] = [];
  for (let i = 0; i < 12; i++) {
    const started = c.now();
    c.advance(500);
    waits.push(b.afterExit(started));
  }
  t.deepEqual(waits, [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
});

test('a worker that served healthyAfterMs resets the back-off; one just short of it does not', (t) => {
  const c = clock();
  const b = new RestartBackoff({ firstMs: 100, maxMs: 30_000, healthyAfterMs: 60_000, now: c.now });
  for (let i = 0; i < 6; i++) b.afterExit(c.now());
  t.is(b.afterExit(c.now()), 6400, 'deep in the back-off');

  let started = c.now();
  c.advance(59_999);
  t.is(b.afterExit(started), 12_800, 'not yet healthy');

  started = c.now();
  c.advance(60_000);
  t.is(b.afterExit(started), 100, 'healthy for a minute: first step again');
  t.is(b.afterExit(c.now()), 200, 'and doubling again from there');
});

test('a worker that never listened is not healthy, however long it lived', (t) => {
  const c = clock();
  const b = new RestartBackoff({ now: c.now });
  b.afterExit(undefined);
  c.advance(3_600_000);
  t.is(b.afterExit(undefined), 200);
});
