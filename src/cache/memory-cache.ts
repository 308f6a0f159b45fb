// In-process CA-chain cache: for a single gateway, and the fallback of the
// Redis cache while Redis is down.
import type { CaChainCache, CachedChain } from './ca-chain-cache.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

export class MemoryCaChainCache implements CaChainCache {
  readonly kind = 'memory';
  private readonly chains = new Map<string, Expiring<CachedChain>>();
  // The value is the holder's token, so that a holder whose lock expired cannot release its successor's.
  private readonly locks = new Map<string, Expiring<object>>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  async get(label: string): Promise<CachedChain | undefined> {
    return this.live(this.chains, label);
  }

  /** The chain and how long it is still kept. */
  async getEntry(label: string): Promise<{ chain: CachedChain; ttlMs: number } | undefined> {
    const chain = this.live(this.chains, label);
    return chain && { chain, ttlMs: this.chains.get(label)!.expiresAt - this.now() };
  }

  async set(label: string, chain: CachedChain, maxAgeMs: number): Promise<void> {
    this.chains.set(label, { value: chain, expiresAt: this.now() + maxAgeMs });
  }

  async tryLock(label: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    if (this.live(this.locks, label)) return undefined;
    const token = {};
    this.locks.set(label, { value: token, expiresAt: this.now() + ttlMs });
    return async () => {
      if (this.locks.get(label)?.value === token) this.locks.delete(label);
    };
  }

  async close(): Promise<void> {
    this.chains.clear();
    this.locks.clear();
  }

  /** The unexpired value under `key`; expired entries are dropped on the way. */
  private live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
    const entry = map.get(key);
    if (entry && entry.expiresAt > this.now()) return entry.value;
    map.delete(key);
    return undefined;
  }
}
