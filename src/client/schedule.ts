// When to renew and when to retry: pure functions of the certificate's validity,
// the policy, the current time and a random number (smallstep's ca/renew.go
// shape: renew at a point of the lifetime, moved earlier by jitter; retry with
// jitter). The daemon passes its clock and RNG in, so tests need no sleeping.
import { type Span, parseSpan, spanMs } from '../util/durations.js';

export interface RenewalPolicy {
  /** Renew once this share of the lifetime has passed ("80%"), or this long before notAfter ("60m"). */
  threshold: Span;
  /** Wait between failed attempts: share of the lifetime or a duration. */
  retry: Span;
  /** Renewal happens up to this much earlier, chosen at random, so a fleet enrolled together does not renew together. */
  jitter: Span;
  /** Generate a new key for every renewal. */
  rotateKey: boolean;
}

/** aziot's defaults (80 %, 4 %, new key) plus a little jitter. */
export const DEFAULT_POLICY: RenewalPolicy = {
  threshold: parseSpan('80%'),
  retry: parseSpan('4%'),
  jitter: parseSpan('2%'),
  rotateKey: true,
};

/** Retries closer than this hammer a server that is down; farther than this leave an expiring certificate unattended. */
export const MIN_RETRY_MS = 1000;
export const MAX_RETRY_MS = 3_600_000;
/** A server's Retry-After is honoured up to this. */
export const MAX_SERVER_RETRY_MS = 86_400_000;
/** Retry interval when the policy is a percentage and there is no certificate yet to take a lifetime from. */
export const NO_CERT_RETRY_MS = 60_000;
/** Retries come up to this share earlier than the interval, to spread clients that failed together. */
export const RETRY_JITTER = 0.1;

export interface Validity {
  notBefore: number; // ms since epoch
  notAfter: number;
}

export const lifetimeMs = (v: Validity) => Math.max(0, v.notAfter - v.notBefore);

/** The moment a certificate becomes due for renewal. `rng` returns [0, 1). */
export function renewalTime(v: Validity, p: RenewalPolicy, rng: () => number): number {
  const life = lifetimeMs(v);
  const base = p.threshold.kind === 'percent' ? v.notBefore + (life * p.threshold.percent) / 100 : v.notAfter - p.threshold.ms;
  const jitter = Math.min(spanMs(p.jitter, life), life) * rng();
  return Math.max(v.notBefore, Math.round(base - jitter));
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * How long to wait after a failed attempt. A server's Retry-After (202 or 503)
 * wins. Otherwise the policy's interval, clamped to [MIN_RETRY_MS,
 * MAX_RETRY_MS], and never more than half of what is left of a still-valid
 * certificate, so the attempts grow denser as expiry nears instead of
 * the next one landing after it.
 */
export function retryDelay(now: number, v: Validity | undefined, p: RenewalPolicy, rng: () => number, serverRetryAfterMs?: number): number {
  if (serverRetryAfterMs !== undefined) return clamp(serverRetryAfterMs, MIN_RETRY_MS, MAX_SERVER_RETRY_MS);
  let d = v ? spanMs(p.retry, lifetimeMs(v)) : p.retry.kind === 'duration' ? p.retry.ms : NO_CERT_RETRY_MS;
  d = clamp(d, MIN_RETRY_MS, MAX_RETRY_MS);
  if (v && v.notAfter > now) d = Math.min(d, Math.max(MIN_RETRY_MS, (v.notAfter - now) / 2));
  return Math.max(MIN_RETRY_MS, Math.round(d * (1 - RETRY_JITTER * rng())));
}

/**
 * After a successful renewal: the next renewal time. When the new certificate
 * is already due (its lifetime is shorter than a duration threshold, say a
 * "7d" policy meeting a server that issues for a day), the default share of
 * the lifetime applies instead, so a misfit policy neither loops nor lets the
 * certificate lapse; failing that, one retry interval.
 */
export function nextAfterSuccess(now: number, v: Validity, p: RenewalPolicy, rng: () => number): { at: number; tooShort: boolean } {
  const at = renewalTime(v, p, rng);
  if (at > now) return { at, tooShort: false };
  const byShare = renewalTime(v, { ...p, threshold: DEFAULT_POLICY.threshold }, rng);
  return { at: byShare > now ? byShare : now + retryDelay(now, v, p, rng), tooShort: true };
}
