// Renewal policy values: a share of the certificate's lifetime ("80%") or a
// length of time ("60m", "90min", "2h", "1day", "7d"). aziot accepts only
// `%`, `min` and `day`; we accept those and the spellings people actually write,
// including the tutorial's own "60m".
import { EstError } from '../errors.js';

export type Span =
  | { kind: 'percent'; percent: number }
  | { kind: 'duration'; ms: number };

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

const invalid = (what: string, s: string, why: string) =>
  new EstError('malformed', `${what} "${s}" is invalid: ${why} (write e.g. "80%", "60m", "90min", "2h", "1day" or "7d")`);

/** Parses a percentage of lifetime or a duration; `what` names the setting in messages. */
export function parseSpan(s: string, what = 'value'): Span {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z%]*)\s*$/.exec(s);
  if (!m) throw invalid(what, s, 'not a number with a unit');
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  if (unit === '%') {
    if (!(n > 0 && n <= 100)) throw invalid(what, s, 'a percentage must be above 0 and at most 100');
    return { kind: 'percent', percent: n };
  }
  if (unit === '') throw invalid(what, s, 'a unit is missing');
  const per = UNIT_MS[unit];
  if (per === undefined) throw invalid(what, s, `unknown unit "${m[2]}"`);
  if (!(n > 0)) throw invalid(what, s, 'must be above zero');
  return { kind: 'duration', ms: Math.round(n * per) };
}

/** A duration only ("30s", "2h"): for settings where a share of a lifetime means nothing. */
export function parseDurationMs(s: string, what = 'value'): number {
  const span = parseSpan(s, what);
  if (span.kind !== 'duration') throw invalid(what, s, 'a duration is needed here, not a percentage');
  return span.ms;
}

/** Milliseconds a span stands for, given the certificate's lifetime. */
export const spanMs = (span: Span, lifetimeMs: number): number =>
  span.kind === 'duration' ? span.ms : (lifetimeMs * span.percent) / 100;

export function formatSpan(span: Span): string {
  return span.kind === 'percent' ? `${span.percent}%` : formatDuration(span.ms);
}

/** "1d2h", "45m", "30s": for logs and `estgw client status`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const neg = ms < 0;
  let s = Math.round(Math.abs(ms) / 1000);
  if (s === 0) return neg ? '-0s' : '0s';
  const parts: string[] = [];
  for (const [unit, len] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= len) {
      parts.push(`${Math.floor(s / len)}${unit}`);
      s %= len;
    }
    if (parts.length === 2) break;
  }
  return (neg ? '-' : '') + parts.join('');
}
