// Manual approval tests: the operator's `estgw requests` CLI as a separate
// process on a gateway's store, and the 202 a held request gets.
import type { ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { type RunResult, run } from '../helpers/cli.js';
import type { RawResponse } from '../helpers/http.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Where `estgw requests` finds the queue: the data directory, or Redis with a prefix. */
export interface StoreAt {
  dataDir: string;
  redis?: { url: string; prefix: string };
}

export function requestsCli(at: StoreAt) {
  return (...args: string[]): Promise<RunResult> =>
    run(
      process.execPath,
      [MAIN, 'requests', ...args, '--data-dir', at.dataDir, ...(at.redis ? ['--set', `redis.url="${at.redis.url}"`, '--set', `redis.key_prefix="${at.redis.prefix}"`] : [])],
      { env: { ...process.env, ESTGW_DATA_DIR: '', REDIS_URL: '' }, timeoutMs: 60_000 },
    );
}

/** A 202 for a held request: Retry-After, a text/plain reason naming the request; its id. */
export function heldId(t: ExecutionContext, res: RawResponse, retryAfter: number): string {
  t.is(res.status, 202, res.body.toString());
  t.is(res.headers['retry-after'], String(retryAfter));
  t.regex(res.headers['content-type'] ?? '', /^text\/plain/);
  const m = /request ([0-9a-f]{32}) is held for approval/.exec(res.body.toString());
  t.truthy(m, res.body.toString());
  return m![1]!;
}

export interface Listed {
  id: string;
  state: string;
  label: string;
  subject: string;
  sans: string[];
  identity: string;
  source: string;
  polls: number;
  reason?: string;
  decidedBy?: string;
}

export async function listed(t: ExecutionContext, cli: ReturnType<typeof requestsCli>, ...args: string[]): Promise<Listed[]> {
  const r = await cli('list', '--json', ...args);
  t.is(r.code, 0, r.stderr);
  return r.stdout.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Listed);
}
