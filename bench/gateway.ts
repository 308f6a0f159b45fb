// A fresh gateway for one bench run: temp data dir, free loopback port, logs
// to a file, and a teardown that takes the cluster workers down with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: this file runs from dist/bench/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GATEWAY_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Gateway {
  url: string; // https://127.0.0.1:PORT/.well-known/est
  dataDir: string;
  logFile: string;
  caFile: string;
  /** Process group of the primary and its workers. */
  pgid: number | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  workers: 'auto' | number;
  /** Run from this configuration file (its listen and data_dir win over the fresh ones below). */
  config?: { file: string; port: number; dataDir: string; caFile: string };
  /** Extra node flags, e.g. --cpu-prof for bench/profile.ts. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  /** Gets `stop` as soon as the process exists, so Ctrl-C during start-up still cleans up. */
  onSpawn?: (stop: () => Promise<void>) => void;
}

/** Port the kernel hands out for 127.0.0.1:0; closed again before the gateway binds it. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

export function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startGateway(o: StartOptions): Promise<Gateway> {
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} not found: build first (npm run build)`);
  const dataDir = o.config?.dataDir ?? (await mkdtemp(join(tmpdir(), 'estgw-bench-')));
  const logFile = join(dataDir, 'gateway.log');
  const port = o.config?.port ?? (await freePort());
  const fd = openSync(logFile, 'a');
  const args = [
    ...(o.nodeArgs ?? []), GATEWAY_MAIN, 'serve',
    ...(o.config ? ['--config', o.config.file] : []),
    '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--workers', String(o.workers),
  ];
  // detached: own process group, so one signal reaches the primary and its cluster workers
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let stopped = false;
  const gw: Gateway = {
    url: `https://127.0.0.1:${port}/.well-known/est`,
    dataDir,
    logFile,
    caFile: o.config?.caFile ?? join(dataDir, 'ca', 'root', 'ca.cert.pem'),
    pgid: child.pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      await killGroup(child, exited);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  o.onSpawn?.(() => gw.stop());
  try {
    await waitReady(`${gw.url}/cacerts`, child, o.readyTimeoutMs ?? 60_000);
  } catch (e) {
    const tail = logTail(logFile);
    await gw.stop();
    throw new Error(`${(e as Error).message}\n--- gateway log (tail) ---\n${tail}`);
  }
  return gw;
}

/** SIGTERM the group, give it time to flush (CPU profiles, logs), then SIGKILL what is left. */
export async function killGroup(child: ChildProcess, exited: Promise<void>, graceMs = 10_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const signal = (s: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(-pid, s);
      return true;
    } catch {
      return false; // group already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  // the primary may be gone while a worker still writes its profile
  while (signal(0) && Date.now() < deadline) await sleep(50);
  signal('SIGKILL');
}

// Not unref'd: during teardown these timers are what keeps the process alive.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`gateway exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    try {
      const status = await getStatus(url);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`gateway did not answer ${url} within ${timeoutMs / 1000}s (last: ${last})`);
}

// The CA file may not exist yet while the gateway starts, so readiness does not verify TLS.
function getStatus(url: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 2000, agent: false }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}
