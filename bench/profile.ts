// CPU profile of a fresh gateway under wrk load:
//   npx tsc -p . && node dist/bench/profile.js [--duration 10s] [--workers 1] [--out .bench/profile]
// The gateway runs under `node --cpu-prof`; SIGTERM lets every process write
// its .cpuprofile, and the largest one (the busy worker) is summarised.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './gateway.js';
import { BENCH_KEY_TYPES } from './options.js';
import { type CpuProfile, formatSummary, summarise } from './profile-summary.js';
import { log, openSession, problems, runMain } from './session.js';
import type { KeySpec } from '../src/pki/keys.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10s' },
      workers: { type: 'string', default: '1' },
      connections: { type: 'string', default: '16' },
      'key-type': { type: 'string', default: 'p256' },
      out: { type: 'string', default: join(REPO_ROOT, '.bench', `profile-${Date.now()}`) },
      top: { type: 'string', default: '25' },
    },
  });
  const keyType = values['key-type'] as KeySpec;
  if (!BENCH_KEY_TYPES.includes(keyType)) throw new Error(`--key-type must be one of ${BENCH_KEY_TYPES.join(', ')}`);
  const out = resolve(values.out);
  await mkdir(out, { recursive: true });

  const session = await openSession({
    keyType,
    csrs: 512,
    threads: 2,
    connections: Number(values.connections),
    workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
    user: 'estuser',
    pass: 'estpwd',
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${out}`],
  });
  log(`profiling under load for ${values.duration}`);
  const r = await session.run(values.duration);
  const failures = problems('profiled run', r);
  log(`${r.requestsPerSec.toFixed(1)} enrollments/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms${failures.length ? ` (${failures.join('; ')})` : ''}`);
  await session.gateway?.stop(); // SIGTERM: profiles are written on the way out

  const files = (await readdir(out)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    console.error(`no .cpuprofile in ${out}: does the gateway exit cleanly on SIGTERM?`);
    return 1;
  }
  const sized = await Promise.all(files.map(async (f) => ({ f: join(out, f), size: (await stat(join(out, f))).size })));
  sized.sort((a, b) => b.size - a.size);
  log(`profiles: ${sized.map((s) => s.f).join(', ')}`);
  const busiest = sized[0]!.f;
  console.log(`== ${busiest}`);
  console.log(formatSummary(summarise(JSON.parse(await readFile(busiest, 'utf8')) as CpuProfile, REPO_ROOT), Number(values.top)));
  return failures.length > 0 ? 1 : 0;
}

await runMain(main);
