// What every bench run needs before wrk starts: a CSR pool on disk, a gateway
// (fresh, or --target), one checked enrollment; and a teardown that also runs on Ctrl-C.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeySpec } from '../src/pki/keys.js';
import { makeCsrPool } from './csr-pool.js';
import { type Gateway, startGateway } from './gateway.js';
import { startHierarchy } from './hierarchy.js';
import { operationUrl } from './options.js';
import { basicAuth, enrollOnce } from './sanity.js';
import { type WrkResult, findWrk, killWrk, runWrk, socketErrorCount } from './wrk.js';

export interface SessionOptions {
  keyType: KeySpec;
  csrs: number;
  threads: number;
  connections: number;
  workers: 'auto' | number;
  target?: string;
  cacert?: string;
  user: string;
  pass: string;
  /** Extra node flags for a fresh gateway. */
  nodeArgs?: string[];
  hops?: number;
}

export interface Session {
  gateway?: Gateway;
  /** Process groups of every gateway this bench started (all layers with --hops). */
  pgids: number[];
  run(duration: string): Promise<WrkResult>;
}

export class WrkMissing extends Error {}

const open: Array<() => Promise<void>> = [];
let closing: Promise<void> | undefined;
let interrupted = false;

/** Stops wrk and every gateway and removes every temp dir this process made; once, whoever asks first. */
export function closeAll(): Promise<void> {
  closing ??= (async () => {
    killWrk();
    while (open.length) {
      // one failed step must not keep the others (a gateway, a temp dir) from running
      await open.pop()!().catch((e: Error) => console.error(`bench: cleanup: ${e.message}`));
    }
  })();
  return closing;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    console.error(`\n${sig}: stopping`);
    void closeAll().finally(() => process.exit(130));
  });
}

export const log = (msg: string) => console.error(`bench: ${msg}`);

export async function openSession(o: SessionOptions): Promise<Session> {
  const wrk = findWrk();
  if (!wrk) throw new WrkMissing('wrk not found: apt-get install wrk');

  log(`generating ${o.csrs} ${o.keyType} CSRs`);
  const pool = await makeCsrPool(o.keyType, o.csrs);
  const workDir = await mkdtemp(join(tmpdir(), 'estgw-bench-wrk-'));
  open.push(() => rm(workDir, { recursive: true, force: true }));
  const bodiesFile = join(workDir, 'csrs.txt');
  await writeFile(bodiesFile, pool.join('\n'));

  let base: string;
  let ca: Buffer | undefined;
  let gateway: Gateway | undefined;
  let all: Gateway[] = [];
  if (o.target) {
    base = o.target;
    if (o.cacert) ca = await readFile(o.cacert);
  } else if (o.hops) {
    log(`starting a fresh hierarchy: ${o.hops} forwarding layer(s) above which the top issues (workers ${o.workers} each)`);
    const h = await startHierarchy(o.hops, o.workers, (stop) => open.push(stop));
    open.push(() => h.stop());
    gateway = h.bottom;
    all = h.all;
    base = gateway.url;
    ca = await readFile(gateway.caFile);
  } else {
    log(`starting a fresh gateway (workers ${o.workers})`);
    gateway = await startGateway({
      workers: o.workers,
      onSpawn: (stop) => open.push(stop),
      ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
    });
    base = gateway.url;
    ca = await readFile(gateway.caFile);
  }
  const url = operationUrl(base, 'simpleenroll');
  const certs = await enrollOnce({ url, user: o.user, pass: o.pass, ...(ca ? { ca } : {}) }, pool[0]!);
  log(`sanity enrollment ok (${certs} certificate${certs === 1 ? '' : 's'} returned)`);

  const authorization = basicAuth(o.user, o.pass);
  if (gateway && all.length === 0) all = [gateway];
  return {
    ...(gateway ? { gateway } : {}),
    pgids: all.flatMap((g) => (g.pgid === undefined ? [] : [g.pgid])),
    run: (duration) =>
      runWrk(wrk, { url: url.href, threads: o.threads, connections: o.connections, duration, bodiesFile, authorization }),
  };
}

/** Errors make a run worthless: wrk counts a fast 401 as a request like any other. */
export function problems(what: string, r: WrkResult): string[] {
  const out: string[] = [];
  if (r.non200 !== 0 || r.non2xx !== 0) out.push(`${what}: ${r.non200} non-200 responses (first: ${r.firstBad || 'n/a'})`);
  const sock = socketErrorCount(r);
  if (sock > 0) out.push(`${what}: ${sock} socket errors ${JSON.stringify(r.socketErrors)}`);
  if (r.requests === 0) out.push(`${what}: no request completed`);
  return out;
}

/** Runs main, always tears down, exits with its code (1 on a throw, 130 on Ctrl-C). */
export async function runMain(main: () => Promise<number>): Promise<never> {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    if (e instanceof WrkMissing) console.error(e.message);
    else if (!interrupted) console.error(`bench failed: ${(e as Error).message}`);
  } finally {
    await closeAll();
  }
  process.exit(interrupted ? 130 : code);
}
