// Serves the CA chains of labels forwarded to a parent layer: from the cache,
// refreshed ahead of time, and still served (up to maxStaleMs) while the parent
// is down. The cache is expected not to throw (ResilientCaChainCache falls back
// by itself); fetch failures are what this class handles.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaChainCache, CachedChain } from './ca-chain-cache.js';
import { EstError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';

export type ChainSource = () => Promise<Buffer[]>;

export interface CaChainServiceOptions {
  /** A cached chain older than this is refreshed in the background and served meanwhile. */
  refreshAfterMs: number;
  /** The oldest chain ever served, while the parent cannot be reached. */
  maxStaleMs: number;
  /** How long one replica may fetch before the others stop waiting for it. */
  lockTtlMs?: number;
  /** After a failed fetch, background refreshes of that label pause this long, to spare a parent that is down. */
  retryFailedAfterMs?: number;
  now?: () => number;
  logger?: Logger;
  /** What is cached, for reasons and log lines: "CA chain" (default), "CRLs". */
  what?: string;
  /** An empty answer is valid (a parent with no CRLs); for CA chains it is an error. */
  allowEmpty?: boolean;
}

const POLL_MS = 50;

export class CaChainService {
  private readonly sources = new Map<string, ChainSource>();
  /** What messages and logs call a key: the label, where the key also names where its chain comes from. */
  private readonly names = new Map<string, string>();
  /** One fetch per label at a time in this process; every caller shares its outcome. */
  private readonly inflight = new Map<string, Promise<CachedChain>>();
  /** Labels whose last fetch failed, and when: for the back-off and to log an outage once. */
  private readonly failedAt = new Map<string, number>();
  private readonly closing = new AbortController();
  private readonly lockTtlMs: number;
  private readonly retryFailedAfterMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly what: string;

  constructor(
    private readonly cache: CaChainCache,
    private readonly opts: CaChainServiceOptions,
  ) {
    this.lockTtlMs = opts.lockTtlMs ?? 10_000;
    this.retryFailedAfterMs = opts.retryFailedAfterMs ?? 5_000;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger();
    this.what = opts.what ?? 'CA chain';
  }

  /** `label` is the cache key; `name`, what messages call it (default: the key). */
  register(label: string, fetch: ChainSource, name = label): void {
    this.sources.set(label, fetch);
    this.names.set(label, name);
  }

  private nameOf(label: string): string {
    return this.names.get(label) ?? label;
  }

  async get(label: string): Promise<Buffer[]> {
    const source = this.sources.get(label);
    if (!source) throw new EstError('notFound', `no ${this.what} source for "${label}"`);
    const cached = await this.cache.get(label);
    if (cached && this.servable(cached)) {
      if (this.now() - cached.fetchedAt >= this.opts.refreshAfterMs) this.refreshInBackground(label, source, cached);
      return cached.certs;
    }
    try {
      return (await this.refresh(label, source, cached)).certs;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const name = this.nameOf(label);
      throw new EstError('unavailable', `${this.what === 'CA chain' ? `CA chain for label "${name}"` : `${this.what} of ${name}`} ${this.what === 'CA chain' ? 'is' : 'are'} unavailable: ${reason}`, { retryAfter: 30, cause: err });
    }
  }

  /** Fetches now, whatever the cache holds (a local CA was replaced); returns the new chain. */
  async refreshNow(label: string): Promise<Buffer[]> {
    const source = this.sources.get(label);
    if (!source) throw new EstError('notFound', `no ${this.what} source for "${label}"`);
    return (await this.refresh(label, source, await this.cache.get(label))).certs;
  }

  /** Stops background refreshes and waits for the fetches under way. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled(this.inflight.values());
  }

  private refreshInBackground(label: string, source: ChainSource, seen: CachedChain): void {
    if (this.closing.signal.aborted) return;
    if (this.now() - (this.failedAt.get(label) ?? -Infinity) < this.retryFailedAfterMs) return;
    // The failure is logged in fetch(); the stale chain is being served meanwhile.
    this.refresh(label, source, seen).catch(() => {});
  }

  private refresh(label: string, source: ChainSource, seen: CachedChain | undefined): Promise<CachedChain> {
    let flight = this.inflight.get(label);
    if (!flight) {
      flight = this.refreshShared(label, source, seen).finally(() => this.inflight.delete(label));
      this.inflight.set(label, flight);
    }
    return flight;
  }

  /**
   * Fetches under the cross-replica lock. While another replica holds it, polls
   * (at most lockTtlMs) until that replica's chain shows up in the cache or the
   * lock is free again (the holder failed), and fetches anyway after that.
   */
  private async refreshShared(label: string, source: ChainSource, seen: CachedChain | undefined): Promise<CachedChain> {
    let release = await this.cache.tryLock(label, this.lockTtlMs);
    for (let polls = Math.ceil(this.lockTtlMs / POLL_MS); !release && polls > 0; polls--) {
      await sleep(POLL_MS, undefined, { signal: this.closing.signal }).catch(() => {});
      if (this.closing.signal.aborted) throw new Error(`the ${this.what} service is closing`);
      release = await this.cache.tryLock(label, this.lockTtlMs);
      const filled = await this.cache.get(label);
      if (filled && this.servable(filled) && filled.fetchedAt > (seen?.fetchedAt ?? -Infinity)) {
        await release?.();
        return filled;
      }
    }
    try {
      return await this.fetch(label, source);
    } finally {
      await release?.();
    }
  }

  private async fetch(label: string, source: ChainSource): Promise<CachedChain> {
    try {
      const certs = await source();
      if (certs.length === 0 && !this.opts.allowEmpty) throw new Error('the source returned an empty chain');
      const chain = { certs, fetchedAt: this.now() };
      await this.cache.set(label, chain, this.opts.maxStaleMs);
      if (this.failedAt.delete(label)) this.logger.info({ label: this.nameOf(label) }, `fetching the ${this.what} works again`);
      return chain;
    } catch (err) {
      if (!this.failedAt.has(label)) this.logger.warn({ label: this.nameOf(label), err }, `cannot fetch the ${this.what}; serving the cached one, if any, until it is maxStaleMs old`);
      this.failedAt.set(label, this.now());
      throw err;
    }
  }

  private servable(chain: CachedChain): boolean {
    return this.now() - chain.fetchedAt <= this.opts.maxStaleMs;
  }
}
