// Shared by the cache tests: DER-looking bytes, a logger whose lines can be
// counted, bounded waiting, and clean-up of Redis keys.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
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
