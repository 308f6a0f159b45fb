// Runs wrk with bench/enroll.lua and reads its figures back.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { REPO_ROOT } from './gateway.js';

export const LUA_SCRIPT = join(REPO_ROOT, 'bench', 'enroll.lua');

export interface WrkRun {
  url: string;
  threads: number;
  connections: number;
  duration: string;
  bodiesFile: string;
  authorization: string;
}

export interface WrkResult {
  requests: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 200, counted by the Lua script. */
  non200: number;
  /** wrk's own "Non-2xx or 3xx responses". */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  firstBad: string;
  raw: string;
}

/** The wrk binary on PATH, or undefined. */
export function findWrk(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir || '.', 'wrk');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Children to kill on Ctrl-C. */
const running = new Set<ReturnType<typeof spawn>>();
export const killWrk = () => running.forEach((c) => c.kill('SIGTERM'));

export function runWrk(wrk: string, r: WrkRun): Promise<WrkResult> {
  const args = [
    '--latency', '-t', String(r.threads), '-c', String(r.connections), '-d', r.duration,
    // a slow but correct enrollment is latency, not an error; a timeout still fails the run
    '--timeout', '10s',
    '-s', LUA_SCRIPT, r.url, '--', r.bodiesFile, String(r.threads),
  ];
  return new Promise((res, rej) => {
    const child = spawn(wrk, args, {
      env: { ...process.env, ESTGW_BENCH_AUTHORIZATION: r.authorization },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // wrk stops itself after -d; this only guards against a hang
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds(r.duration) + 60) * 1000);
    child.on('error', (e) => {
      clearTimeout(guard);
      running.delete(child);
      rej(e);
    });
    child.on('close', (code, sig) => {
      clearTimeout(guard);
      running.delete(child);
      if (code !== 0) return rej(new Error(`wrk exited with ${code ?? sig}\n${err}${out}`));
      try {
        res(parseWrkOutput(out));
      } catch (e) {
        rej(new Error(`${(e as Error).message}\n--- wrk output ---\n${out}${err}`));
      }
    });
  });
}

/** wrk's duration syntax (10s, 2m, 1h, bare seconds) in seconds. */
export function seconds(d: string): number {
  const m = /^(\d+)([smh]?)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 }[m[2] as '' | 's' | 'm' | 'h']);
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** wrk's "3.21ms", "850.00us", "1.02s" in milliseconds. */
export function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  if (!m) throw new Error(`cannot read wrk time "${s}"`);
  return Math.round(Number(m[1]) * TIME_UNITS[m[2]!]! * 1000) / 1000; // drop float noise below 1 us
}

export function parseWrkOutput(out: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output has no ${what}`);
    return m;
  };
  const rps = Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]);
  const requests = Number(need(/^\s*(\d+) requests in /m, 'request count')[1]);
  const p50 = toMs(need(/^\s+50%\s+(\S+)/m, '50% latency')[1]!);
  const p99 = toMs(need(/^\s+99%\s+(\S+)/m, '99% latency')[1]!);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const lua = need(/^BENCH (.*)$/m, 'BENCH line from enroll.lua')[1]!;
  const field = (k: string) => new RegExp(`(?:^| )${k}=(\\S*)`).exec(lua)?.[1];
  return {
    requests,
    requestsPerSec: rps,
    p50Ms: p50,
    p99Ms: p99,
    non200: Number(field('non200') ?? NaN),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
    firstBad: /first_bad=(.*)$/.exec(lua)?.[1]?.trim() ?? '',
    raw: out,
  };
}

export const socketErrorCount = (r: WrkResult) =>
  r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout;
