// A node:cluster gateway that loses a worker to SIGKILL in the middle of load:
// no connection is left waiting for the dead worker (each one is answered, or
// closed or reset at once), and the primary forks a replacement that serves.
import test from 'ava';
import { request } from 'node:https';
import { eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { childrenOf, killServed, probe, serve } from '../helpers/serve-process.js';

let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-faults-');
});
test.after.always(async () => {
  killServed();
  await tmp?.remove();
});

/** Generous on purpose: a connection held for a dead worker never ends, a busy machine only answers late. */
const HUNG_MS = 5000;

type Outcome = 'answered' | 'closed' | 'hung';

/** GET /cacerts on a connection of its own, as libest does. */
function once(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/.well-known/est/cacerts', rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve('answered'));
      res.on('error', () => resolve('closed'));
    });
    const timer = setTimeout(() => {
      resolve('hung');
      req.destroy();
    }, HUNG_MS);
    req.on('close', () => clearTimeout(timer));
    req.on('error', () => resolve('closed'));
    req.end();
  });
}

test('SIGKILL of one worker, then of the other, under load: every request is answered or its connection closed, and new workers serve', async (t) => {
  // the environment asks for round-robin, which the primary must not honour
  const s = await serve([], tmp.path('kill-worker'), { env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } });
  t.teardown(() => s.stop('SIGKILL').then(() => {}));
  const initial = await childrenOf(s.child.pid!);
  t.is(initial.length, 2);

  const counts: Record<Outcome, number> = { answered: 0, closed: 0, hung: 0 };
  let loading = true;
  const started = Date.now();
  const client = async () => {
    // bounded in time as well as by the test's own end
    while (loading && Date.now() - started < 40_000) counts[await once(s.port)]++;
  };
  const clients = Array.from({ length: 6 }, client);
  try {
    t.true(await eventually(() => counts.answered >= 10, 15_000), 'the load is served before the kill');
    let workers = initial;
    for (const victim of initial) {
      const answeredBefore = counts.answered;
      process.kill(victim, 'SIGKILL');
      t.true(
        await eventually(async () => {
          workers = await childrenOf(s.child.pid!);
          return workers.length === 2 && !workers.includes(victim);
        }, 10_000),
        `a replacement for ${victim} is forked (workers now ${workers.join(', ')})`,
      );
      t.true(await eventually(() => counts.answered >= answeredBefore + 10, 15_000), 'the load goes on being served');
    }
  } finally {
    loading = false;
    await Promise.all(clients);
  }
  t.is(counts.hung, 0, `${counts.hung} of ${counts.answered + counts.closed + counts.hung} requests got neither an answer nor a close within ${HUNG_MS} ms`);
  // only workers forked after the kills are left, and they serve
  const now = await childrenOf(s.child.pid!);
  t.false(now.some((w) => initial.includes(w)));
  for (let i = 0; i < 5; i++) t.is(await probe(s.port, HUNG_MS), 200);
});
