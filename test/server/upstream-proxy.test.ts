// [[proxy]] routes: bytes through to the parent layer for an admitted caller,
// failures as text/plain 502/504. Who is admitted: proxy-routes.test.ts.
import test from 'ava';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toPem } from '../../src/est/base64.js';
import { createRootCa, ensureServerTls } from '../../src/pki/ca.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { DEV_AUTH } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';

let dir: string;
let target: Server;
let targetPort: number;
let gw: TestGateway;
const seen: Array<{ method: string; url: string; body: string; forwardedFor: string | undefined }> = [];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-proxy-'));
  const ca = await createRootCa('registry-root', join(dir, 'ca'), { subject: [['CN', 'registry root']], days: 30 });
  const tls = await ensureServerTls(join(dir, 'tls'), ca);
  await writeFile(join(dir, 'registry-root.pem'), toPem('CERTIFICATE', ca.certDer));
  target = createServer({ cert: tls.certChainPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString(), forwardedFor: req.headers['x-forwarded-for'] as string | undefined });
      if (req.url!.startsWith('/v2/slow')) return; // never answers
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json', 'Docker-Distribution-Api-Version': 'registry/2.0' });
      res.end(JSON.stringify({ path: req.url }));
    });
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  targetPort = (target.address() as AddressInfo).port;
  gw = await startTestGateway({
    extra: {
      proxy: [
        { prefix: '/v2/', target: `https://127.0.0.1:${targetPort}`, trust: join(dir, 'registry-root.pem'), timeout: 1, identities: ['user:estuser'] },
        { prefix: '/dead/', target: 'https://127.0.0.1:1', identities: ['user:estuser'] },
      ],
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  target?.closeAllConnections();
  target?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a configured prefix passes through to the parent: method, path, body, status and headers unchanged', async (t) => {
  const get = await httpsRequest(`https://127.0.0.1:${gw.port}/v2/library/alpine/manifests/3`, { ca: gw.caPem, headers: { Authorization: DEV_AUTH } });
  t.is(get.status, 200);
  t.is(get.headers['docker-distribution-api-version'], 'registry/2.0');
  t.deepEqual(JSON.parse(get.body.toString()), { path: '/v2/library/alpine/manifests/3' });
  const post = await httpsRequest(`https://127.0.0.1:${gw.port}/v2/uploads/`, { ca: gw.caPem, method: 'POST', body: 'layer-bytes', headers: { Authorization: DEV_AUTH } });
  t.is(post.status, 201);
  // this file's tests run at once: the slow route's request may have arrived after this one
  const upload = seen.find((r) => r.method === 'POST' && r.url === '/v2/uploads/');
  t.is(upload?.body, 'layer-bytes');
  t.is(upload?.forwardedFor, '127.0.0.1');
});

test('EST paths are still the gateway\'s own', async (t) => {
  const res = await httpsRequest(`${gw.url}/cacerts`, { ca: gw.caPem });
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/pkcs7-mime');
});

test('an unreachable parent is a text/plain 502 with Retry-After; a silent one a 504 after the timeout', async (t) => {
  const dead = await httpsRequest(`https://127.0.0.1:${gw.port}/dead/x`, { ca: gw.caPem, headers: { Authorization: DEV_AUTH } });
  t.is(dead.status, 502);
  t.regex(dead.headers['content-type']!, /^text\/plain/);
  t.is(dead.headers['retry-after'], '30');
  const started = Date.now();
  const slow = await httpsRequest(`https://127.0.0.1:${gw.port}/v2/slow`, { ca: gw.caPem, headers: { Authorization: DEV_AUTH } });
  t.is(slow.status, 504);
  t.true(Date.now() - started < 5000);
});
