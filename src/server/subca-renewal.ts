// Keeps a layer's sub-CA (create = "request") fresh: well before it expires the
// gateway obtains a new one, with a new key, from the parent; certificates the
// old one issued keep validating (it stays a previous generation) until they expire.
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { CaMaterial } from '../pki/ca.js';
import { caDir } from './pki-setup.js';
import type { Logger } from '../util/log.js';

/** setTimeout cannot wait longer than this; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_RETRY_MS = 60_000;
const MAX_RETRY_MS = 3600_000;

export interface Timer {
  cancel(): void;
}

export interface SubCaRenewerOptions {
  cfg: Config;
  logger: Logger;
  /** Obtains and swaps in a new sub-CA (replaceSubordinateCa). */
  replace: (name: string, dir: string) => Promise<CaMaterial>;
  /** Called after a swap, so the gateway issues from the new sub-CA. */
  onRenewed: (name: string) => Promise<void>;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => Timer;
}

export class SubCaRenewer {
  private readonly timers = new Map<string, Timer>();
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => Timer;
  private stopped = false;

  constructor(private readonly o: SubCaRenewerOptions) {
    this.now = o.now ?? Date.now;
    this.setTimer =
      o.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return { cancel: () => clearTimeout(t) };
      });
  }

  start(cas: Map<string, CaMaterial>): void {
    for (const [name, c] of Object.entries(this.o.cfg.cas)) {
      const material = cas.get(name);
      if (c.create === 'request' && material) this.scheduleFor(name, material.cert);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }

  /** When the sub-CA should be replaced: `renew_at` of the way through its lifetime. */
  renewAt(name: string, cert: X509Certificate): number {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    return from + (to - from) * this.o.cfg.cas[name]!.renew_at;
  }

  private scheduleFor(name: string, cert: X509Certificate): void {
    const at = this.renewAt(name, cert);
    this.o.logger.info({ ca: name, renewAt: new Date(at).toISOString(), notAfter: cert.validTo }, 'sub-CA renewal scheduled');
    this.wakeAt(name, at, cert);
  }

  private wakeAt(name: string, at: number, cert: X509Certificate): void {
    if (this.stopped) return;
    const delay = Math.max(0, at - this.now());
    this.timers.set(
      name,
      this.setTimer(() => {
        if (this.now() < at) this.wakeAt(name, at, cert);
        else void this.renew(name, cert);
      }, Math.min(delay, MAX_TIMER_MS)),
    );
  }

  /** Obtains the new sub-CA now; on failure retries, more often as expiry nears. */
  async renew(name: string, current: X509Certificate): Promise<void> {
    try {
      const next = await this.o.replace(name, caDir(this.o.cfg, name));
      await this.o.onRenewed(name);
      this.o.logger.info({ ca: name, notAfter: next.cert.validTo }, 'sub-CA renewed from the parent layer');
      this.scheduleFor(name, next.cert);
    } catch (err) {
      const left = Date.parse(current.validTo) - this.now();
      const retry = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, left / 20));
      this.o.logger.warn({ ca: name, err: (err as Error).message, retryInMs: retry }, 'sub-CA renewal failed; still issuing from the current one');
      this.wakeAt(name, this.now() + retry, current);
    }
  }
}
