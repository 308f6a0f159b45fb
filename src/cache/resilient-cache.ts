// Redis shared by the replicas, with an in-process copy of everything this
// replica wrote or read, so that CA chains are still served while Redis is down.
import type { CaChainCache, CachedChain } from './ca-chain-cache.js';
import type { MemoryCaChainCache } from './memory-cache.js';
import type { RedisCaChainCache } from './redis-cache.js';
import { silentLogger, type Logger } from '../util/log.js';

const DOWN = Symbol('redis down');

export class ResilientCaChainCache implements CaChainCache {
  readonly kind = 'redis';
  private redisUp = true;

  constructor(
    private readonly redis: RedisCaChainCache,
    private readonly memory: MemoryCaChainCache,
    private readonly logger: Logger = silentLogger(),
  ) {}

  async get(label: string): Promise<CachedChain | undefined> {
    const [entry, shared] = await Promise.all([this.memory.getEntry(label), this.shared(() => this.redis.getEntry(label))]);
    const local = entry?.chain;
    if (shared === DOWN) return local;
    if (shared === undefined) {
      // A miss in Redis is not the last word: a restarted Redis has lost what we still hold.
      // Put it back at once, so the other replicas need not wait for a refresh (or a parent that is down).
      if (entry) {
        await this.shared(() => this.redis.set(label, entry.chain, entry.ttlMs));
        this.logger.info({ label }, 'CA chain missing from redis: restored it from memory');
      }
      return local;
    }
    if (local && local.fetchedAt >= shared.chain.fetchedAt) return local;
    // Keep a copy of what other replicas fetched, for when Redis goes away.
    await this.memory.set(label, shared.chain, shared.ttlMs);
    return shared.chain;
  }

  async set(label: string, chain: CachedChain, maxAgeMs: number): Promise<void> {
    await Promise.all([this.memory.set(label, chain, maxAgeMs), this.shared(() => this.redis.set(label, chain, maxAgeMs))]);
  }

  async tryLock(label: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const release = await this.shared(() => this.redis.tryLock(label, ttlMs));
    // Without Redis the replicas cannot coordinate; at least this one fetches once at a time.
    if (release === DOWN) return this.memory.tryLock(label, ttlMs);
    if (!release) return undefined;
    // If Redis is gone by the time we release, the lock's TTL frees it.
    return async () => {
      await this.shared(release);
    };
  }

  ping(): Promise<void> {
    return this.redis.ping();
  }

  async close(): Promise<void> {
    await Promise.all([this.redis.close(), this.memory.close()]);
  }

  /** Runs a Redis operation; reports an outage once when it starts and once when it ends. */
  private async shared<T>(op: () => Promise<T>): Promise<T | typeof DOWN> {
    try {
      const result = await op();
      if (!this.redisUp) {
        this.redisUp = true;
        this.logger.info('redis is back, sharing CA chains again');
      }
      return result;
    } catch (err) {
      if (this.redisUp) {
        this.redisUp = false;
        this.logger.warn({ err }, 'redis unavailable, serving CA chains from memory');
      }
      return DOWN;
    }
  }
}
