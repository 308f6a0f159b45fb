// approval.hook: a command run when a request is queued (a notification). No
// shell; what the request says reaches it only as environment variables, one
// line each; killed after hook_timeout; the client's answer never waits for it.
import { execFile } from 'node:child_process';
import { escapeUnshowable } from '../est/name-syntax.js';
import type { Logger } from '../util/log.js';
import type { HeldRequest } from './store.js';

/**
 * Names come from CSRs: one line each, as JSON escapes them, plus what JSON
 * leaves raw: C1 controls, invisible and bidirectional format characters (a
 * right-to-left override could make another name look like `plc-7` on an
 * operator's terminal) and line separators.
 */
export const oneLine = (s: string): string =>
  escapeUnshowable(JSON.stringify(s).slice(1, -1));

export function runHook(argv: string[], timeoutMs: number, r: HeldRequest, logger: Logger): void {
  const env = {
    ...process.env,
    ESTGW_REQUEST_ID: r.id,
    ESTGW_REQUEST_LABEL: r.label,
    ESTGW_REQUEST_SUBJECT: oneLine(r.subject),
    ESTGW_REQUEST_NAMES: r.sans.map(oneLine).join(' '),
    ESTGW_REQUEST_IDENTITY: oneLine(r.identity),
    ESTGW_REQUEST_SOURCE: r.source,
  };
  try {
    const child = execFile(argv[0]!, argv.slice(1), { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 }, (err, _out, stderr) => {
      if (err) logger.warn({ id: r.id, hook: argv[0], err: err.message, stderr: String(stderr).slice(0, 500) }, 'approval hook failed');
    });
    child.stdin?.end();
  } catch (err) {
    logger.warn({ id: r.id, hook: argv[0], err: (err as Error).message }, 'approval hook failed');
  }
}
