// `estgw serve` as a child process, as an operator runs it: started on a free
// port, up once the banner is printed and /cacerts answers, stopped by a signal.
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { freePort } from '../cache/helpers.js';
import { run } from './cli.js';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Served {
  child: ChildProcess;
  port: number;
  url: string;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const alive = new Set<ChildProcess>();
/** For `test.after.always`: whatever a failed test left running. */
export function killServed(): void {
  for (const c of alive) c.kill('SIGKILL');
}

/** GET /cacerts on a new connection: its status, 0 when there is no answer (the TLS certificate is not checked). */
export function probe(port: number, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/.well-known/est/cacerts', rejectUnauthorized: false, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function serve(args: string[], dataDir: string, o: { workers?: number } = {}): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--workers', String(o.workers ?? 2), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REDIS_URL: '' },
  });
  alive.add(child);
  let err = '';
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      alive.delete(child);
      resolve({ code, signal });
    }),
  );
  const deadline = Date.now() + 20_000;
  let up = false;
  while (Date.now() < deadline && child.exitCode === null) {
    // answering is not enough: the primary prints its banner once every worker listens
    if (/fingerprint/.test(err) && (await probe(port)) === 200) {
      up = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`estgw serve did not come up on ${port}:\n${err}\n${out}`);
  }
  return {
    child,
    port,
    url: `https://127.0.0.1:${port}/.well-known/est`,
    stderr: () => err,
    stdout: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const t0 = Date.now();
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const r = await exited;
      clearTimeout(timer);
      return { ...r, ms: Date.now() - t0 };
    },
  };
}

/** Child process ids of `pid` (the cluster workers). */
export async function childrenOf(pid: number): Promise<number[]> {
  const r = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]);
  return r.stdout.toString().split(/\s+/).filter(Boolean).map(Number);
}

export const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export async function gone(pids: number[], withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (pids.every((p) => !isRunning(p))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pids.every((p) => !isRunning(p));
}
