import test from 'ava';
import { parseSpan } from '../../src/util/durations.js';
import {
  DEFAULT_POLICY, MAX_RETRY_MS, MIN_RETRY_MS, NO_CERT_RETRY_MS, type RenewalPolicy, nextAfterSuccess, renewalTime, retryDelay,
} from '../../src/client/schedule.js';

const H = 3_600_000;
const D = 24 * H;
const T0 = Date.UTC(2030, 0, 1);
const cert = (days: number) => ({ notBefore: T0, notAfter: T0 + days * D });
const policy = (o: Partial<Record<'threshold' | 'retry' | 'jitter', string>> = {}, rotateKey = true): RenewalPolicy => ({
  threshold: parseSpan(o.threshold ?? '80%'),
  retry: parseSpan(o.retry ?? '4%'),
  jitter: parseSpan(o.jitter ?? '1%'),
  rotateKey,
});
const noJitter = () => 0;
const maxJitter = () => 0.999999;

test('defaults are aziot\'s: 80% threshold, 4% retry, new key', (t) => {
  t.deepEqual(DEFAULT_POLICY.threshold, { kind: 'percent', percent: 80 });
  t.deepEqual(DEFAULT_POLICY.retry, { kind: 'percent', percent: 4 });
  t.true(DEFAULT_POLICY.rotateKey);
});

test('threshold as a percentage: renew once that share of the lifetime has passed', (t) => {
  t.is(renewalTime(cert(10), policy({ threshold: '80%' }), noJitter), T0 + 8 * D);
  t.is(renewalTime(cert(1), policy({ threshold: '10%' }), noJitter), T0 + 0.1 * D);
});

test('threshold as a duration: renew that long before notAfter', (t) => {
  t.is(renewalTime(cert(10), policy({ threshold: '2d' }), noJitter), T0 + 8 * D);
  t.is(renewalTime(cert(1), policy({ threshold: '60m' }), noJitter), T0 + D - H);
  // longer than the lifetime: due from the start, never before notBefore
  t.is(renewalTime(cert(1), policy({ threshold: '7d' }), noJitter), T0);
});

test('jitter only ever moves renewal earlier, by at most the jitter span', (t) => {
  const p = policy({ threshold: '80%', jitter: '5%' });
  const base = T0 + 8 * D;
  t.is(renewalTime(cert(10), p, noJitter), base);
  const early = renewalTime(cert(10), p, maxJitter);
  t.true(early < base && early >= base - 0.5 * D, String(early - base));
  const samples = Array.from({ length: 200 }, () => renewalTime(cert(10), p, Math.random));
  t.true(samples.every((s) => s <= base && s >= base - 0.5 * D));
  t.true(new Set(samples).size > 100, 'spread');
});

test('retry follows the policy: share of the lifetime or a duration', (t) => {
  t.is(retryDelay(T0, cert(1), policy({ retry: '4%' }), noJitter), 0.04 * D);
  t.is(retryDelay(T0, cert(30), policy({ retry: '10m' }), noJitter), 10 * 60_000);
});

test('retry is clamped to [1 s, 1 h]', (t) => {
  t.is(retryDelay(T0, cert(365), policy({ retry: '4%' }), noJitter), MAX_RETRY_MS);
  t.is(retryDelay(T0, { notBefore: T0, notAfter: T0 + 10_000 }, policy({ retry: '1%' }), noJitter), MIN_RETRY_MS);
});

test('retries grow denser as expiry nears: never more than half of what is left', (t) => {
  const c = cert(1);
  const now = c.notAfter - 20 * 60_000; // 20 minutes left, policy says 4% = 57.6 minutes
  t.is(retryDelay(now, c, policy({ retry: '4%' }), noJitter), 10 * 60_000);
  // once expired, the policy interval again (nothing left to halve)
  t.is(retryDelay(c.notAfter + 1, c, policy({ retry: '4%' }), noJitter), 0.04 * D);
});

test('retry jitter spreads a fleet by up to 10% earlier', (t) => {
  const d = retryDelay(T0, cert(1), policy({ retry: '1h' }), maxJitter);
  t.true(d < H && d >= 0.9 * H);
});

test('a server\'s Retry-After wins over the policy', (t) => {
  t.is(retryDelay(T0, cert(1), policy(), noJitter, 120_000), 120_000);
  t.is(retryDelay(T0, cert(1), policy(), noJitter, 0), MIN_RETRY_MS);
});

test('with no certificate yet, a percentage retry falls back to one minute', (t) => {
  t.is(retryDelay(T0, undefined, policy({ retry: '4%' }), noJitter), NO_CERT_RETRY_MS);
  t.is(retryDelay(T0, undefined, policy({ retry: '5m' }), noJitter), 5 * 60_000);
});

test('a fresh certificate already due (lifetime under the threshold) renews at the default 80% instead of looping', (t) => {
  const c = cert(1);
  const r = nextAfterSuccess(T0 + 1000, c, policy({ threshold: '2d', retry: '10m' }), noJitter);
  t.true(r.tooShort);
  t.is(r.at, T0 + 0.8 * D);
  // issued so late that even 80% has passed: one retry interval, never a tight loop
  const late = nextAfterSuccess(T0 + 0.9 * D, c, policy({ threshold: '2d', retry: '10m' }), noJitter);
  t.true(late.tooShort);
  t.is(late.at, T0 + 0.9 * D + 10 * 60_000);
  const ok = nextAfterSuccess(T0 + 1000, c, policy({ threshold: '60m' }), noJitter);
  t.false(ok.tooShort);
  t.is(ok.at, c.notAfter - H);
});
