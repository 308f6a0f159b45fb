// `npm run demo -- --check`: the whole three-layer demo, as CI runs it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';

const DEMO = new URL('../../demo/demo.js', import.meta.url).pathname;

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

test.serial('a port already taken fails the demo at once with a clear reason, exit 1', async (t) => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(9444, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const r = await runDemo(['--check'], 30_000);
  t.is(r.code, 1);
  t.regex(r.stderr, /demo failed: port 9444 \(the middle layer\) is in use/);
  t.notRegex(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

test.serial('npm run demo -- --check: three layers, enrollment through two RAs, automatic renewal, islanded issuance, recovery, a cold replica served from Redis', async (t) => {
  t.timeout(180_000);
  const r = await runDemo(['--check'], 170_000);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.is(r.stdout, 'demo: every step passed\n', 'quiet: one line');
  for (const port of [9443, 9444, 9445, 9446]) t.true(await portFree(port), `port ${port} released`);
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
  t.teardown(() => redis.disconnect());
  t.deepEqual(await redis.keys('estgw:demo:*'), [], 'its Redis keys are removed');
});
