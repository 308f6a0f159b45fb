// Shared by the cache tests: DER-looking bytes, a logger whose lines can be
// counted, bounded waiting, clean-up of Redis keys, and private redis-servers.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import type { Logger } from '../../src/util/log.js';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

export const uniquePrefix = () => `estgw-test:${randomUUID()}:`;

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

export const der = (...bytes: number[]) => Buffer.from([0x30, bytes.length, ...bytes]);

/** A logger that keeps its lines; `count` tells how many contain a message. */
export function captureLogger(): { logger: Logger; count: (msg: string) => number } {
  const messages: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
  return { logger, count: (msg) => messages.filter((m) => m.includes(msg)).length };
}

/** Polls `check` until it holds; false after about `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<boolean> {
  for (let waited = 0; waited < timeoutMs; waited += 10) {
    if (await check()) return true;
    await sleep(10);
  }
  return check();
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A throw-away redis-server on loopback, killed with the test at the latest.
 * Without persistence, or with `persistDir`: an append-only file there, synced
 * on every write, so that a kill -9 and a start on the same directory keep everything.
 */
export async function startRedis(t: ExecutionContext, port: number, o: { persistDir?: string } = {}): Promise<{ kill: () => Promise<void> }> {
  const persistence = o.persistDir ? ['--dir', o.persistDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(kill);
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  const ready = await eventually(() => probe.connect().then(() => true, () => false), 3_000);
  probe.disconnect();
  if (!ready) {
    await kill();
    throw new Error(`redis-server on port ${port} did not start`);
  }
  return { kill };
}
