// Issue 12: a held request survives a restart of the gateway and of Redis
// (a private redis-server with an append-only file), and is issued after it.
import test from 'ava';
import { eventually, freePort, startRedis, uniquePrefix } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { heldId, listed, requestsCli } from './helpers.js';


test('gateway restart and Redis kill -9 + restart (appendonly): the pending request is still there, then approved and issued', async (t) => {
  const tmp = await scratchDir('estgw-approval-aof-');
  t.teardown(() => tmp.remove());
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const prefix = uniquePrefix();
  let redis = await startRedis(t, port, { persistDir: tmp.dir });
  const o = { dataDir: tmp.path('data'), redis: { url, key_prefix: prefix }, labels: { default: { approval: 'manual' } }, extra: { approval: { retry_after: 3 } } };
  const csr = await makeCsr('plc-aof');
  const first = await startTestGateway(o);
  const id = heldId(t, await enroll(first, csr.b64), 3);
  await first.close();

  const gw = await startTestGateway(o);
  t.teardown(() => gw.close());
  t.is(heldId(t, await enroll(gw, csr.b64), 3), id);

  await redis.kill();
  // while Redis is down: 503 with Retry-After, not an error page, nothing queued elsewhere
  const down = await enroll(gw, csr.b64);
  assertReason(t, down, 503, /approval queue is unreachable/);
  t.is(down.headers['retry-after'], '3');
  redis = await startRedis(t, port, { persistDir: tmp.dir });
  t.true(await eventually(async () => (await enroll(gw, csr.b64)).status === 202, 15_000));
  t.is(heldId(t, await enroll(gw, csr.b64), 3), id);

  const cli = requestsCli({ dataDir: o.dataDir, redis: { url, prefix } });
  const [row] = await listed(t, cli);
  t.like(row, { id, state: 'pending', subject: 'CN=plc-aof' });
  t.is((await cli('approve', id)).code, 0);
  t.is(issuedCert(t, await enroll(gw, csr.b64)).subject, 'CN=plc-aof');
});
