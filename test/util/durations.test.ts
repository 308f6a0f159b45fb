import test from 'ava';
import { formatDuration, parseDurationMs, parseSpan } from '../../src/util/durations.js';

const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;

test('aziot units and the spellings people write: %, m, min, h, day, d', (t) => {
  t.deepEqual(parseSpan('80%'), { kind: 'percent', percent: 80 });
  t.deepEqual(parseSpan('4%'), { kind: 'percent', percent: 4 });
  t.deepEqual(parseSpan('60m'), { kind: 'duration', ms: 60 * MIN }); // the tutorial's own value, which aziot rejects
  t.deepEqual(parseSpan('90min'), { kind: 'duration', ms: 90 * MIN });
  t.deepEqual(parseSpan('2h'), { kind: 'duration', ms: 2 * H });
  t.deepEqual(parseSpan('1day'), { kind: 'duration', ms: D });
  t.deepEqual(parseSpan('7d'), { kind: 'duration', ms: 7 * D });
  t.deepEqual(parseSpan('3 days'), { kind: 'duration', ms: 3 * D });
  t.deepEqual(parseSpan('30s'), { kind: 'duration', ms: 30_000 });
  t.deepEqual(parseSpan('1.5h'), { kind: 'duration', ms: 1.5 * H });
  t.deepEqual(parseSpan('2W'), { kind: 'duration', ms: 14 * D });
});

test('values that mean nothing are refused with the setting named', (t) => {
  for (const bad of ['', '80', '0%', '101%', '-1h', '0m', '5 parsecs', 'm', '1h30m', '%']) {
    const e = t.throws(() => parseSpan(bad, 'threshold'), undefined, bad);
    t.regex(e!.message, /^threshold ".*" is invalid/);
  }
});

test('a duration-only setting refuses a percentage', (t) => {
  t.is(parseDurationMs('45s'), 45_000);
  t.throws(() => parseDurationMs('5%', 'timeout'), { message: /timeout "5%" is invalid: a duration is needed/ });
});

test('durations print compactly for status and logs', (t) => {
  t.is(formatDuration(0), '0s');
  t.is(formatDuration(59_000), '59s');
  t.is(formatDuration(3 * H + 2 * MIN + 5000), '3h2m');
  t.is(formatDuration(2 * D + 3 * H), '2d3h');
  t.is(formatDuration(-90_000), '-1m30s');
});
