// Structured logs (pino). Secrets never go in: log lines are built from named,
// safe fields (identities, never credentials), which the tests check.
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Writes are asynchronous (sonic-boom batches lines while a write is in
 * flight): one synchronous write(2) per audit line cost the enrollment hot path
 * several percent. `flushLogs` before a deliberate exit.
 */
export function createLogger(level = 'info', name = 'estgw'): Logger {
  return pino(
    { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  );
}

export function flushLogs(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // nothing buffered, or stdout is gone
  }
}

/** For tests and library use: a logger that drops everything. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
