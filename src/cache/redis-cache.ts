// CA-chain cache shared by every replica of a layer. Commands fail fast while
// Redis is down (no offline queue, no retries, bounded timeouts) so that the
// caller can fall back instead of holding a request.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { CaChainCache, CachedChain } from './ca-chain-cache.js';
import { silentLogger, type Logger } from '../util/log.js';

// Deletes the lock only if it still holds our token: after our TTL ran out another replica may own it.
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface RedisCacheOptions {
  url: string;
  keyPrefix: string;
  /** What the keys hold, after the prefix: `cacerts` (default) or `crls` (a parent's CRLs, src/revocation). */
  namespace?: string;
  logger?: Logger;
}

/** A chain read from Redis and how long Redis keeps it, so that a copy can expire with it. */
export interface RedisEntry {
  chain: CachedChain;
  ttlMs: number;
}

export class RedisCaChainCache implements CaChainCache {
  readonly kind = 'redis';
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly namespace: string;
  private readonly logger: Logger;
  /** The first connection attempt: commands wait for it so the first request after start-up does not fail. */
  private readonly connecting: Promise<void>;

  constructor(opts: RedisCacheOptions) {
    this.prefix = opts.keyPrefix;
    this.namespace = opts.namespace ?? 'cacerts';
    this.logger = opts.logger ?? silentLogger();
    this.client = new Redis(opts.url, {
      lazyConnect: true,
      enableOfflineQueue: false, // reject at once while disconnected
      maxRetriesPerRequest: 0, // a command cut off by a disconnect fails instead of waiting for a reconnect
      connectTimeout: 1000,
      commandTimeout: 1000, // a Redis that accepts but does not answer
      retryStrategy: (attempt) => Math.min(200 * attempt, 1000), // reconnect forever
      disconnectTimeout: 200, // close() while Redis is down would otherwise keep the process alive for 2 s
    });
    // Without a listener ioredis prints every failed reconnect; the caller reports outages once.
    this.client.on('error', (err: Error) => this.logger.debug({ err }, 'redis connection error'));
    this.connecting = this.client.connect().catch(() => {});
  }

  async get(label: string): Promise<CachedChain | undefined> {
    return (await this.getEntry(label))?.chain;
  }

  async getEntry(label: string): Promise<RedisEntry | undefined> {
    await this.connecting;
    const key = this.chainKey(label);
    const [raw, ttlMs] = await Promise.all([this.client.get(key), this.client.pttl(key)]);
    if (raw === null || ttlMs <= 0) return undefined;
    const chain = parseChain(raw);
    if (!chain) {
      this.logger.warn({ key }, 'ignoring malformed CA chain in redis');
      return undefined;
    }
    return { chain, ttlMs };
  }

  async set(label: string, chain: CachedChain, maxAgeMs: number): Promise<void> {
    await this.connecting;
    const json = JSON.stringify({ certs: chain.certs.map((c) => c.toString('base64')), fetchedAt: chain.fetchedAt });
    await this.client.set(this.chainKey(label), json, 'PX', Math.max(1, Math.ceil(maxAgeMs)));
  }

  async tryLock(label: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    await this.connecting;
    const key = `${this.prefix}lock:${this.namespace}:${label}`;
    const token = randomUUID();
    const taken = await this.client.set(key, token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    if (taken === null) return undefined;
    return async () => {
      await this.client.eval(RELEASE_LOCK, 1, key, token);
    };
  }

  async ping(): Promise<void> {
    await this.connecting;
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.connecting;
    // QUIT lets pending replies arrive; while disconnected it is refused, and only the reconnect loop is left to stop.
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private chainKey(label: string): string {
    return `${this.prefix}${this.namespace}:${label}`;
  }
}

/** The stored chain, or undefined when the value is not what `set` writes. */
function parseChain(raw: string): CachedChain | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { certs, fetchedAt } = value as Record<string, unknown>;
  if (!Array.isArray(certs) || typeof fetchedAt !== 'number' || !Number.isFinite(fetchedAt)) return undefined;
  if (!certs.every((c): c is string => typeof c === 'string' && BASE64.test(c))) return undefined;
  return { certs: certs.map((c) => Buffer.from(c, 'base64')), fetchedAt };
}
