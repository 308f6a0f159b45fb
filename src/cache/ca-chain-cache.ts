// One interface for the CA-chain cache: in-process for a single gateway,
// Redis when several replicas of a layer must share what they fetched.

export interface CachedChain {
  /** DER certificates as /cacerts returns them: issuing CA first, root last. */
  certs: Buffer[];
  /** When the chain was fetched from its source (ms since epoch). */
  fetchedAt: number;
}

export interface CaChainCache {
  readonly kind: 'memory' | 'redis';
  get(label: string): Promise<CachedChain | undefined>;
  /** Stores the chain; it is dropped after `maxAgeMs` (the longest we would ever serve it stale). */
  set(label: string, chain: CachedChain, maxAgeMs: number): Promise<void>;
  /**
   * Takes the refresh lock for `label` for `ttlMs` if nobody holds it, so that
   * only one replica fetches from the parent at a time. Returns a release
   * function, or undefined when another holder has it.
   */
  tryLock(label: string, ttlMs: number): Promise<(() => Promise<void>) | undefined>;
  /** A shared cache answers a round trip, or says why not (for /readyz); absent for the in-process cache. */
  ping?(): Promise<void>;
  close(): Promise<void>;
}
