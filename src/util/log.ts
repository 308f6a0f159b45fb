// Structured logs (pino). Secrets never go in: log identities, never credentials.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info', name = 'estgw'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['authorization', 'password', '*.authorization', '*.password', 'req.headers.authorization'], remove: true },
  });
}

/** For tests and library use: a logger that drops everything. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
