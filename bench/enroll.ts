// `npm run bench`: simpleenroll throughput and latency of a fresh gateway
// (or of --target), driven by wrk over keep-alive HTTPS. See bench/README.md.
import { availableParallelism } from 'node:os';
import { measureForeignCpu } from './cpu-share.js';
import { logTail } from './gateway.js';
import { type BenchOptions, USAGE, parseBenchOptions } from './options.js';
import { log, openSession, problems, runMain } from './session.js';
import { type WrkResult, seconds, socketErrorCount } from './wrk.js';

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchOptions(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const session = await openSession(o);
  const failures: string[] = [];
  if (seconds(o.warmup) > 0) {
    log(`warmup ${o.warmup}`);
    failures.push(...problems('warmup', await session.run(o.warmup)));
  }
  log(`measuring ${o.duration}`);
  const foreign = measureForeignCpu(session.pgids);
  const r = await session.run(o.duration);
  failures.push(...problems('measured run', r));

  printSummary(o, r, failures, o.target ? undefined : foreign());
  if (failures.length > 0 && session.gateway) {
    console.error(`--- gateway log (tail) ---\n${logTail(session.gateway.logFile, 20)}`);
  }
  return failures.length > 0 ? 1 : 0;
}

/** Above this share of CPU taken by other processes the figures say more about them than about us. */
const BUSY_MACHINE = 0.1;

function printSummary(o: BenchOptions, r: WrkResult, failures: string[], foreignCpu: number | undefined): void {
  const nproc = availableParallelism();
  const gateway = o.target ? `target ${o.target}` : o.hops ? `${o.hops} forwarding hop(s) + issuing top, workers ${o.workers} each` : `local, workers ${o.workers}`;
  const warmup = seconds(o.warmup) > 0 ? `after ${o.warmup} warmup` : 'no warmup';
  const fmt = (n: number, d = 2) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log(
    [
      '',
      'est-gateway simpleenroll bench',
      `  gateway      ${gateway} (nproc ${nproc})`,
      `  CSRs         ${o.csrs} x ${o.keyType}`,
      `  load         wrk ${o.threads} threads, ${o.connections} connections, ${o.duration} (${warmup})`,
      `  throughput   ${fmt(r.requestsPerSec, 1)} enrollments/s (${r.requests} requests)`,
      `  latency      p50 ${fmt(r.p50Ms)} ms, p99 ${fmt(r.p99Ms)} ms`,
      `  errors       non-200 ${r.non200}, socket ${socketErrorCount(r)}`,
      ...(foreignCpu === undefined
        ? []
        : [`  other load   ${(100 * foreignCpu).toFixed(0)}% of the CPU went to other processes${foreignCpu > BUSY_MACHINE ? ' (busy machine: figures too low)' : ''}`]),
      `  verdict      ${failures.length ? `FAILED\n    ${failures.join('\n    ')}` : 'ok'}`,
    ].join('\n'),
  );
  if (!o.json) return;
  console.log(
    JSON.stringify({
      ok: failures.length === 0,
      target: o.target ?? null,
      workers: o.target ? null : o.workers,
      nproc,
      keyType: o.keyType,
      csrs: o.csrs,
      threads: o.threads,
      connections: o.connections,
      duration: o.duration,
      requests: r.requests,
      enrollmentsPerSec: r.requestsPerSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      non200: r.non200,
      socketErrors: socketErrorCount(r),
      foreignCpu: foreignCpu === undefined ? null : Math.round(foreignCpu * 1000) / 1000,
      failures,
    }),
  );
}

await runMain(main);
