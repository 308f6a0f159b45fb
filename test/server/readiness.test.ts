// /readyz: ready while every label's CA chain can be served; the parent layer's
// and Redis's reachability are reported beside it, not folded into it.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { PARENT_PROBE_TTL_MS } from '../../src/server/readiness.js';
import { freePort, startRedis, uniquePrefix } from '../cache/helpers.js';
import { startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';

const readyz = async (url: string, ca: string) => {
  const r = await httpsRequest(`${new URL(url).origin}/readyz`, { ca });
  return { status: r.status, type: r.headers['content-type'], body: JSON.parse(r.body.toString()) as Record<string, any> };
};

test('forwarding layer: parent reachable, Redis up → ready; Redis killed, parent stopped → still ready, both reported down', async (t) => {
  const parent = await startTestGateway();
  t.teardown(() => parent.close());
  const redisPort = await freePort();
  const redis = await startRedis(t, redisPort);
  const child = await startTestGateway({
    labels: { default: { mode: 'forward', upstream: { url: parent.url, trust: parent.caFile, connect_timeout: 1 } } },
    redis: { url: `redis://127.0.0.1:${redisPort}`, key_prefix: uniquePrefix() },
  });
  t.teardown(() => child.close());
  const origin = new URL(parent.url).origin;

  const up = await readyz(child.url, child.caPem);
  t.is(up.status, 200);
  t.regex(up.type!, /^application\/json/);
  t.deepEqual(up.body.labels, { default: 'ok' });
  t.true(up.body.parents[origin].reachable);
  t.is(typeof up.body.parents[origin].ms, 'number');
  t.is(up.body.redis, 'ok');

  await redis.kill();
  await parent.close();
  await sleep(PARENT_PROBE_TTL_MS + 100);
  const down = await readyz(child.url, child.caPem);
  t.is(down.status, 200, 'the cached chain is still served');
  t.true(down.body.ready);
  t.false(down.body.parents[origin].reachable);
  t.regex(down.body.parents[origin].error, /ECONNREFUSED/);
  t.regex(down.body.redis, /^unavailable: /);
});

test('a parent that was never reached leaves no chain to serve: 503 naming the label; an issuing layer has no parents and no Redis', async (t) => {
  const dead = await freePort();
  const issuing = await startTestGateway();
  t.teardown(() => issuing.close());
  const child = await startTestGateway({
    labels: {
      default: {},
      up: { mode: 'forward', upstream: { url: `https://127.0.0.1:${dead}/.well-known/est`, trust: issuing.caFile, connect_timeout: 1 } },
    },
  });
  t.teardown(() => child.close());
  const r = await readyz(child.url, child.caPem);
  t.is(r.status, 503);
  t.false(r.body.ready);
  t.is(r.body.labels.default, 'ok');
  t.regex(r.body.labels.up, /CA chain for label "up" is unavailable/);
  t.false(r.body.parents[`https://127.0.0.1:${dead}`].reachable);
  t.is(r.body.redis, 'not configured');

  const plain = await readyz(issuing.url, issuing.caPem);
  t.is(plain.status, 200);
  t.deepEqual(plain.body, { ready: true, labels: { default: 'ok' }, parents: {}, redis: 'not configured', crls: { root: 'ok' }, cas: { root: 'ok' } });
});

test('a parent whose TLS certificate is not trusted is reported unreachable with the reason', async (t) => {
  const parent = await startTestGateway();
  const stranger = await startTestGateway();
  t.teardown(() => Promise.all([parent.close(), stranger.close()]).then(() => {}));
  const child = await startTestGateway({
    labels: { default: { mode: 'forward', upstream: { url: parent.url, trust: stranger.caFile, connect_timeout: 1 } } },
  });
  t.teardown(() => child.close());
  const r = await readyz(child.url, child.caPem);
  const p = r.body.parents[new URL(parent.url).origin];
  t.false(p.reachable);
  t.regex(p.error, /certificate/i);
});
