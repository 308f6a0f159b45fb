// Picks the CA-chain cache from the configuration: Redis (with an in-process
// fallback) when replicas share a layer, in-process otherwise.
import type { CaChainCache } from './ca-chain-cache.js';
import { MemoryCaChainCache } from './memory-cache.js';
import { RedisCaChainCache } from './redis-cache.js';
import { ResilientCaChainCache } from './resilient-cache.js';
import type { Logger } from '../util/log.js';

export type { CaChainCache, CachedChain } from './ca-chain-cache.js';
export { CaChainService, type CaChainServiceOptions, type ChainSource } from './chain-service.js';

export function createCaChainCache(opts: { redisUrl?: string; keyPrefix: string; namespace?: string; logger: Logger }): CaChainCache {
  if (!opts.redisUrl) return new MemoryCaChainCache();
  const redis = new RedisCaChainCache({ url: opts.redisUrl, keyPrefix: opts.keyPrefix, logger: opts.logger, ...(opts.namespace ? { namespace: opts.namespace } : {}) });
  return new ResilientCaChainCache(redis, new MemoryCaChainCache(), opts.logger);
}
