// Held requests in Redis, shared by every replica of a layer, under
// KEY_PREFIX approval:. An entry is a hash (its fields JSON-encoded) with a TTL
// to its removeAt; every change is one Lua script, so two replicas that see the
// same poll at once cannot both claim an approved request.
import { Redis } from 'ioredis';
import { type ApprovalState, type ApprovalStore, type HeldRequest, type Transition, ApprovalStoreError } from './store.js';

// KEYS: entry, key index, id set. ARGV: id, key, replacing, ttl ms, field/value pairs.
// The index expires with the entry it names (every TTL change sets both), so a
// present index means a present entry.
const ADD = `
local cur = redis.call('get', KEYS[2])
if cur and cur ~= ARGV[3] then return cur end
for i = 5, #ARGV, 2 do redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('pexpire', KEYS[1], ARGV[4])
redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[4])
redis.call('sadd', KEYS[3], ARGV[1])
return ARGV[1]`;

// KEYS: entry, key index. ARGV: ttl ms, id, number of states, states (JSON).., field/value pairs.
const TRANSITION = `
local s = redis.call('hget', KEYS[1], 'state')
if not s then return 0 end
local n = tonumber(ARGV[3])
local ok = false
for i = 4, 3 + n do if ARGV[i] == s then ok = true end end
if not ok then return 0 end
for i = 4 + n, #ARGV, 2 do redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('pexpire', KEYS[1], ARGV[1])
if redis.call('get', KEYS[2]) == ARGV[2] then redis.call('pexpire', KEYS[2], ARGV[1]) end
return 1`;

// KEYS: entry. ARGV: at (JSON number).
const POLL = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hincrby', KEYS[1], 'polls', 1)
local last = tonumber(redis.call('hget', KEYS[1], 'lastSeen'))
if tonumber(ARGV[1]) > last then redis.call('hset', KEYS[1], 'lastSeen', ARGV[1]) end
return 1`;

const ID = /^[0-9a-f]{32}$/;

export interface RedisApprovalOptions {
  url: string;
  keyPrefix: string;
}

export class RedisApprovalStore implements ApprovalStore {
  readonly kind = 'redis';
  private readonly client: Redis;
  private readonly ns: string;
  private readonly connecting: Promise<void>;

  constructor(o: RedisApprovalOptions) {
    this.ns = `${o.keyPrefix}approval:`;
    // unlike the chain cache, a held request has nothing to fall back to: commands wait a little for a reconnect
    this.client = new Redis(o.url, { lazyConnect: true, connectTimeout: 2000, commandTimeout: 3000, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(200 * n, 1000), disconnectTimeout: 200 });
    this.client.on('error', () => {});
    this.connecting = this.client.connect().catch(() => {});
  }

  private entryKey = (id: string) => `${this.ns}req:${id}`;
  private indexKey = (key: string) => `${this.ns}key:${key}`;
  private idsKey = () => `${this.ns}ids`;

  async get(id: string): Promise<HeldRequest | undefined> {
    if (!ID.test(id)) return undefined;
    await this.connecting;
    return fromHash(await this.client.hgetall(this.entryKey(id)));
  }

  async byKey(key: string): Promise<HeldRequest | undefined> {
    await this.connecting;
    const id = await this.client.get(this.indexKey(key));
    return id === null ? undefined : this.get(id);
  }

  async add(r: HeldRequest, replacing?: string): Promise<HeldRequest> {
    await this.connecting;
    const ttl = Math.max(1, r.removeAt - Date.now());
    const got = (await this.client.eval(ADD, 3, this.entryKey(r.id), this.indexKey(r.key), this.idsKey(), r.id, r.key, replacing ?? '', String(ttl), ...toPairs(r))) as string;
    if (got === r.id) return r;
    const existing = await this.get(got);
    if (!existing) throw new ApprovalStoreError('the approval entry vanished while being added; retry');
    return existing;
  }

  async poll(id: string, at: number): Promise<void> {
    await this.connecting;
    await this.client.eval(POLL, 1, this.entryKey(id), JSON.stringify(at));
  }

  async transition(id: string, from: readonly ApprovalState[], to: Transition): Promise<HeldRequest | undefined> {
    if (!ID.test(id)) return undefined;
    await this.connecting;
    const current = await this.get(id);
    if (!current) return undefined;
    const ttl = Math.max(1, to.removeAt - Date.now());
    const done = await this.client.eval(TRANSITION, 2, this.entryKey(id), this.indexKey(current.key), String(ttl), id, String(from.length), ...from.map((f) => JSON.stringify(f)), ...toPairs(to));
    return done === 1 ? this.get(id) : undefined;
  }

  async list(): Promise<HeldRequest[]> {
    await this.connecting;
    const ids = await this.client.smembers(this.idsKey());
    if (ids.length === 0) return [];
    // one round trip for all of them: the caps read the whole queue for each new request
    const pipe = this.client.pipeline();
    for (const id of ids) pipe.hgetall(this.entryKey(id));
    const replies = (await pipe.exec()) ?? [];
    const out: HeldRequest[] = [];
    const gone: string[] = [];
    replies.forEach(([err, h], i) => {
      if (err) throw err;
      const r = fromHash(h as Record<string, string>);
      if (r) out.push(r);
      else gone.push(ids[i]!);
    });
    if (gone.length) await this.client.srem(this.idsKey(), ...gone);
    return out;
  }

  /** Redis expires entries itself (PEXPIRE to removeAt); list() forgets their ids. */
  async purge(): Promise<void> {}

  async close(): Promise<void> {
    await this.connecting;
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

const toPairs = (o: object): string[] => Object.entries(o).flatMap(([k, v]) => (v === undefined ? [] : [k, JSON.stringify(v)]));

/** A hash written by toPairs back to an entry; undefined when absent or not ours. */
function fromHash(h: Record<string, string>): HeldRequest | undefined {
  if (!h.id) return undefined;
  const o: Record<string, unknown> = {};
  try {
    for (const [k, v] of Object.entries(h)) o[k] = JSON.parse(v);
  } catch {
    return undefined;
  }
  return typeof o.id === 'string' && typeof o.state === 'string' && typeof o.key === 'string' ? (o as unknown as HeldRequest) : undefined;
}
