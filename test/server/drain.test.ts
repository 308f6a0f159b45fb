// SIGTERM drains, as a Kubernetes rolling update expects: /readyz turns 503
// first while the port still answers, then the listener closes, requests in
// flight finish, and the process exits 0. What is still open after the grace
// is closed, so a stuck client cannot hold the exit.
import test from 'ava';
import { request } from 'node:https';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { DEV_AUTH, certsOf } from '../helpers/est.js';
import { startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { parseResponses, rawRequest, tlsConnect } from '../helpers/raw-tls.js';
import { killServed, probe, serve } from '../helpers/serve-process.js';

let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-drain-');
});
test.after.always(async () => {
  killServed();
  await tmp?.remove();
});

/** `p`, or `fallback` when it takes longer than `ms` (the timer does not hold the process). */
const within = <T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> => {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<F>((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
};

/** GET /readyz on a new connection: status and Connection header, or undefined when nothing answers. */
function readyz(port: number): Promise<{ status: number; connection: string; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, connection: String(res.headers.connection), body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A simpleenroll whose body is sent in two halves; the second when the test says so. */
async function slowEnroll(port: number, cn: string) {
  const body = Buffer.from((await makeCsr(cn)).b64);
  const head = rawRequest('POST', '/.well-known/est/simpleenroll', { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH, 'Content-Length': String(body.length) });
  const socket = await tlsConnect(port);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(Buffer.concat([head, body.subarray(0, body.length >> 1)]));
  return {
    async finish() {
      socket.write(body.subarray(body.length >> 1));
      await within(closed, 10_000, undefined);
      return parseResponses(Buffer.concat(chunks))[0];
    },
    socket,
  };
}

test('SIGTERM to a 2-worker serve: /readyz 503 while the port still answers, then the listener closes, a request in flight completes with 200, exit 0', async (t) => {
  const s = await serve(['--set', 'server.shutdown_delay=3', '--set', 'server.shutdown_grace=15'], tmp.path('drain'));
  t.teardown(() => s.stop('SIGKILL').then(() => {}));
  t.is((await readyz(s.port))?.status, 200, 'ready before');

  const inFlight = await slowEnroll(s.port, 'drain-in-flight');
  s.child.kill('SIGTERM');

  let during: Awaited<ReturnType<typeof readyz>>;
  t.true(await eventually(async () => (during = await readyz(s.port))?.status === 503, 10_000), `readyz during the drain: ${JSON.stringify(during)}`);
  t.regex(during!.body, /"draining":true/);
  t.is(during!.connection, 'close', 'and keep-alive clients are told to go');
  t.true(await eventually(async () => (await probe(s.port, 2000)) === 0, 15_000), 'then the listener closes');
  t.is(s.child.exitCode, null, 'still running: a request is in flight');

  const res = await inFlight.finish();
  t.is(res?.status, 200, res?.body.toString());
  t.is(certsOf(res!.body).length, 1, 'the certificate is issued');
  t.is(res!.headers.connection, 'close', 'begun before SIGTERM, answered with Connection: close, so the exit does not wait for keep-alive');
  const exit = await within(s.exited, 15_000, 'still running');
  t.deepEqual(exit, { code: 0, signal: null }, s.stderr());
});

test('drain(): what is still open when the grace ends (a request never finished, a TLS handshake never begun) is closed, and drain resolves', async (t) => {
  const gw = await startTestGateway({ server: { handshake_timeout: 60, request_timeout: 60, headers_timeout: 60 } });
  const stuck = await slowEnroll(gw.port, 'never-finished');
  const silent: Socket = connect(gw.port, '127.0.0.1');
  silent.on('error', () => {});
  await new Promise((r) => silent.once('connect', r));
  const closedAt = (s: Socket) => new Promise<void>((r) => s.once('close', () => r()));
  const gone = Promise.all([closedAt(stuck.socket), closedAt(silent)]);
  const drained = gw.gateway.drain({ delayMs: 0, graceMs: 500 });
  t.is(await within(drained.then(() => 'drained'), 15_000, 'still draining'), 'drained');
  t.is(await within(gone.then(() => 'closed'), 5000, 'open'), 'closed', 'both connections were closed by the server');
});
