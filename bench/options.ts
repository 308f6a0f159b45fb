// Command-line options of `npm run bench` (and bench/profile.ts, which shares them).
import { parseArgs } from 'node:util';
import { KEY_SPECS, type KeySpec } from '../src/pki/keys.js';

export const BENCH_KEY_TYPES: readonly KeySpec[] = ['p256', 'p384', 'rsa2048'];

export interface BenchOptions {
  duration: string;
  warmup: string;
  connections: number;
  threads: number;
  workers: 'auto' | number;
  keyType: KeySpec;
  csrs: number;
  target?: string;
  cacert?: string;
  user: string;
  pass: string;
  json: boolean;
  /** Forwarding layers between the client and the issuing top (0 = the gateway issues itself). */
  hops: number;
}

export const USAGE = `usage: npm run bench -- [options]
  --duration 20s        measured wrk run (wrk syntax: 10s, 2m)
  --warmup 3s           wrk run before it whose figures are dropped (0 = none)
  --connections 16      keep-alive HTTPS connections
  --threads 2           wrk threads
  --workers auto|N      gateway worker processes (ignored with --target)
  --key-type p256|p384|rsa2048   key of the CSRs sent
  --csrs 512            distinct CSRs cycled through
  --hops 0|1|2          forwarding layers (RAs) in front of the issuing top layer
  --target URL          bench a running endpoint, e.g. https://host:8443/.well-known/est
  --cacert FILE --user U --pass P   trust and credentials for --target
  --json                also print one JSON result line`;

// wrk's duration syntax; we pass the string through untouched.
const DURATION = /^\d+[smh]?$/;

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string', default: '20s' },
      warmup: { type: 'string', default: '3s' },
      connections: { type: 'string', default: '16' },
      threads: { type: 'string', default: '2' },
      workers: { type: 'string', default: 'auto' },
      'key-type': { type: 'string', default: 'p256' },
      csrs: { type: 'string', default: '512' },
      target: { type: 'string' },
      hops: { type: 'string', default: '0' },
      cacert: { type: 'string' },
      user: { type: 'string', default: 'estuser' },
      pass: { type: 'string', default: 'estpwd' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  for (const k of ['duration', 'warmup'] as const) {
    if (!DURATION.test(values[k])) throw new Error(`--${k} must look like 20s, 2m or 0 (got "${values[k]}")`);
  }
  const keyType = values['key-type'] as KeySpec;
  if (!BENCH_KEY_TYPES.includes(keyType) || !KEY_SPECS.includes(keyType)) {
    throw new Error(`--key-type must be one of ${BENCH_KEY_TYPES.join(', ')}`);
  }
  const connections = positiveInt('connections', values.connections);
  const threads = positiveInt('threads', values.threads);
  // wrk refuses fewer connections than threads
  if (connections < threads) throw new Error('--connections must be at least --threads');
  const opts: BenchOptions = {
    duration: values.duration,
    warmup: values.warmup,
    connections,
    threads,
    workers: values.workers === 'auto' ? 'auto' : positiveInt('workers', values.workers),
    keyType,
    csrs: positiveInt('csrs', values.csrs),
    user: values.user,
    pass: values.pass,
    json: values.json,
    hops: values.hops === '0' ? 0 : positiveInt('hops', values.hops),
  };
  if (opts.hops > 4) throw new Error('--hops takes 0 to 4');
  if (opts.hops && values.target !== undefined) throw new Error('--hops starts its own layers; it does not go with --target');
  if (values.target !== undefined) {
    const u = new URL(values.target);
    if (u.protocol !== 'https:') throw new Error('--target must be an https:// URL');
    opts.target = values.target;
  }
  if (values.cacert !== undefined) opts.cacert = values.cacert;
  return opts;
}

function positiveInt(name: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got "${s}")`);
  return n;
}

/** `/.well-known/est` or `/.well-known/est/LABEL` plus the operation, from what the user typed. */
export function operationUrl(base: string, op: string): URL {
  const u = new URL(base);
  const path = u.pathname.replace(/\/+$/, '');
  const est = /\/\.well-known\/est(\/[^/]+)?$/.test(path) ? path : `${path}/.well-known/est`;
  u.pathname = `${est}/${op}`;
  return u;
}
