// The client commands as a separate process, the way an operator or cron runs them.
import { fileURLToPath } from 'node:url';
import { type RunOptions, type RunResult, run } from '../../helpers/cli.js';

export const CLI_ENTRY = fileURLToPath(new URL('../../../src/client/cli-entry.js', import.meta.url));

export const estgw = (args: string[], o: RunOptions = {}): Promise<RunResult> => run(process.execPath, [CLI_ENTRY, ...args], { timeoutMs: 20_000, ...o });
