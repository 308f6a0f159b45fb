// [[proxy]] routes admit only the identities they name (TLS client certificate
// against the route's client_trust, or HTTP Basic against [users]), confine the
// path to the prefix, and strip the headers a caller could impersonate with.
// The target is a real HTTPS server that records what reaches it.
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { validateConfig } from '../../src/config/load.js';
import { OID } from '../../src/est/oids.js';
import { ensureServerTls } from '../../src/pki/ca.js';
import { type ClientCert, foreignCa, leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { CHALLENGE, assertReason } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { basic, httpsRequest } from '../helpers/http.js';
import { rawRequest, wireExchange } from '../helpers/raw-tls.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** CN of the client certificate the gateway presented to the target. */
  peerCn: string | undefined;
}

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let gw: TestGateway;
const seen: Seen[] = [];
let target: ReturnType<typeof createServer>;
let edge: ClientCert; // cert:device/edge-1
let plc: ClientCert; // cert:device/plc-1
let edgeRa: ClientCert; // cert:ra/edge-ra (EKU id-kp-cmcRA)
let rogueEdge: ClientCert; // CN edge-9 from a CA no route trusts

test.before(async () => {
  tmp = await scratchDir('estgw-proxy-routes-');
  const registryCa = await foreignCa(tmp.dir, 'registry');
  const devices = await foreignCa(tmp.dir, 'devices');
  const rogue = await foreignCa(tmp.dir, 'rogue');
  edge = await leafCert(devices.ca, 'edge-1');
  plc = await leafCert(devices.ca, 'plc-1');
  edgeRa = await leafCert(devices.ca, 'edge-ra', { eku: [OID.cmcRA, OID.clientAuth] });
  rogueEdge = await leafCert(rogue.ca, 'edge-9');
  // what the gateway presents upstream, to the target
  const gwClient = await leafCert(registryCa.ca, 'gateway-as-client');
  await writeFile(tmp.path('gw-client.cert.pem'), gwClient.certPem);
  await writeFile(tmp.path('gw-client.key.pem'), gwClient.keyPem, { mode: 0o600 });

  const tls = await ensureServerTls(tmp.path('registry-tls'), registryCa.ca);
  target = createServer({ cert: tls.certChainPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString(), peerCn: peer?.subject.replace(/^.*CN=/s, '') });
      res.writeHead(req.method === 'PUT' ? 201 : 200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': 'sha256:abc' });
      res.end(JSON.stringify({ url: req.url }));
    });
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const origin = `https://127.0.0.1:${(target.address() as AddressInfo).port}`;
  const route = (prefix: string, extra: Record<string, unknown>) => ({
    prefix, target: origin, trust: registryCa.pemFile, cert: tmp.path('gw-client.cert.pem'), key: tmp.path('gw-client.key.pem'), ...extra,
  });
  gw = await startTestGateway({
    users: { registry: 'registry-pw', other: 'other-pw' },
    extra: {
      proxy: [
        route('/v2/', { identities: ['cert:device/edge-*', 'user:registry'], client_trust: [devices.pemFile] }),
        route('/closed/', { client_trust: [devices.pemFile] }),
        route('/ra/', { identities: ['cert:ra/*'], client_trust: [devices.pemFile] }),
        route('/tokens/', { identities: ['cert:device/*'], client_trust: [devices.pemFile], pass_authorization: true }),
      ],
    },
  });
});

test.after.always(async () => {
  await gw?.close();
  target?.closeAllConnections();
  target?.close();
  await tmp?.remove();
});

const base = () => `https://127.0.0.1:${gw.port}`;
const withCert = (c: ClientCert) => ({ cert: c.certPem, key: c.keyPem });
/** What the target received for the request tagged `tag` (X-Test header). */
const arrived = (tag: string) => seen.filter((s) => s.headers['x-test'] === tag);
const get = (path: string, tag: string, o: { auth?: string; client?: ClientCert; headers?: Record<string, string> } = {}) =>
  httpsRequest(`${base()}${path}`, {
    ca: gw.caPem,
    headers: { 'X-Test': tag, ...(o.auth ? { Authorization: o.auth } : {}), ...o.headers },
    ...(o.client ? withCert(o.client) : {}),
  });

function refusedBeforeTarget(t: ExecutionContext, tag: string) {
  t.deepEqual(arrived(tag), [], 'the target never saw the request');
}

test('anonymous: 401 with the Basic challenge, and the target never sees the request', async (t) => {
  const res = await get('/v2/library/alpine/manifests/3', 'anon');
  assertReason(t, res, 401, /authentication required/);
  t.is(res.headers['www-authenticate'], CHALLENGE);
  refusedBeforeTarget(t, 'anon');
});

test('a route without identities refuses every caller, even one another route admits: 403', async (t) => {
  assertReason(t, await get('/closed/x', 'closed-anon'), 403, /admits no identity/);
  assertReason(t, await get('/closed/x', 'closed-cert', { client: edge }), 403, /admits no identity/);
  assertReason(t, await get('/closed/x', 'closed-basic', { auth: basic('registry', 'registry-pw') }), 403, /admits no identity/);
  for (const tag of ['closed-anon', 'closed-cert', 'closed-basic']) refusedBeforeTarget(t, tag);
});

test('wrong identity: 403 for cert:device/plc-1, cert:ra/edge-ra and user:other on a route for cert:device/edge-* and user:registry', async (t) => {
  assertReason(t, await get('/v2/x', 'wrong-plc', { client: plc }), 403, /cert:device\/plc-1 may not use \/v2\//);
  // the RA's role is part of its identity: edge-* for devices does not admit it
  assertReason(t, await get('/v2/x', 'wrong-ra', { client: edgeRa }), 403, /cert:ra\/edge-ra/);
  assertReason(t, await get('/v2/x', 'wrong-user', { auth: basic('other', 'other-pw') }), 403, /user:other/);
  for (const tag of ['wrong-plc', 'wrong-ra', 'wrong-user']) refusedBeforeTarget(t, tag);
  t.truthy(gw.logs.find((l) => l.msg === 'proxy refused' && /user:other may not use/.test(String(l.reason))));
});

test('bad credentials: 401 for a certificate from an untrusted CA and for a wrong password', async (t) => {
  assertReason(t, await get('/v2/x', 'rogue', { client: rogueEdge }), 401, /client certificate not accepted/);
  assertReason(t, await get('/v2/x', 'badpw', { auth: basic('registry', 'wrong') }), 401, /invalid user name or password/);
  assertReason(t, await get('/v2/x', 'bearer', { auth: 'Bearer abc' }), 401, /only HTTP Basic/);
  for (const tag of ['rogue', 'badpw', 'bearer']) refusedBeforeTarget(t, tag);
});

test('allowed identities pass: status, headers and body unchanged both ways, with the gateway\'s certificate upstream', async (t) => {
  const byCert = await get('/v2/library/alpine/manifests/3', 'ok-cert', { client: edge });
  t.is(byCert.status, 200);
  t.is(byCert.headers['docker-content-digest'], 'sha256:abc');
  t.is(byCert.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json');
  t.deepEqual(JSON.parse(byCert.body.toString()), { url: '/v2/library/alpine/manifests/3' });

  const put = await httpsRequest(`${base()}/v2/library/alpine/blobs/uploads/1?digest=sha256:abc`, {
    ca: gw.caPem, method: 'PUT', body: 'layer-bytes\u0000\u00ff', headers: { 'X-Test': 'ok-basic', Authorization: basic('registry', 'registry-pw') },
  });
  t.is(put.status, 201);
  const [up] = arrived('ok-basic');
  t.is(up?.body, 'layer-bytes\u0000\u00ff');
  t.is(up?.url, '/v2/library/alpine/blobs/uploads/1?digest=sha256:abc');
  t.is(up?.headers.authorization, undefined, 'the Basic credentials the gateway checked go no further');
  t.is(arrived('ok-cert')[0]?.peerCn, 'gateway-as-client');
  t.is(up?.peerCn, 'gateway-as-client');

  // one log line per request, naming who was admitted; never the query (registries put upload tokens there)
  t.like(gw.logs.find((l) => l.msg === 'proxied' && l.identity === 'user:registry'), { route: '/v2/', method: 'PUT', path: '/v2/library/alpine/blobs/uploads/1' });
  t.truthy(gw.logs.find((l) => l.msg === 'proxied' && l.identity === 'cert:device/edge-1'));
  t.false(JSON.stringify(gw.logs).includes('registry-pw') || JSON.stringify(gw.logs).includes(basic('registry', 'registry-pw').slice(6)));

  t.is((await get('/ra/x', 'ok-ra', { client: edgeRa })).status, 200, 'cert:ra/* admits the RA');
  t.is(arrived('ok-ra').length, 1);
});

// Node's https.request would resolve dot segments in a URL itself: these go byte for byte
async function rawGet(path: string, tag: string, client: ClientCert = edge) {
  const r = await wireExchange(gw.port, rawRequest('GET', path, { 'X-Test': tag, Connection: 'close' }), { ca: gw.caPem, ...withCert(client), until: { responses: 1 } });
  return { ...r.responses[0]!, socket: r.socket };
}

for (const path of [
  '/v2/../x',
  '/v2/%2e%2e/x',
  '/v2/%2E%2e/%2e%2E/x',
  '/v2/a/../../x',
  '/v2/./x',
  '/v2/..;/x',
  '/v2/a%2fb',
  '/v2/a%2F..%2F..%2Fx',
  '/v2/a%5cb',
  '/v2/a\\..\\x',
  '/v2/a%00b',
  '/v2/a%zzb',
  '/v2/%c0%ae%c0%ae/x',
]) {
  test(`path confinement: ${path} from an allowed identity is 400 and never reaches the target`, async (t) => {
    const tag = `path-${path}`;
    const res = await rawGet(path, tag);
    assertReason(t, res, 400);
    refusedBeforeTarget(t, tag);
  });
}

test('the forwarded path is the normalised one: escapes decoded once and re-encoded, so the target cannot decode a second time into ..', async (t) => {
  const cases: Array<[string, string]> = [
    ['/v2/%61lpine/manifests/sha256:0a1b?n=1&last=x%2Fy', '/v2/alpine/manifests/sha256:0a1b?n=1&last=x%2Fy'],
    ['/v2/my%20repo/tags/list', '/v2/my%20repo/tags/list'],
    // %25 decodes to a literal %, which goes upstream escaped again
    ['/v2/%252e%252e/x', '/v2/%252e%252e/x'],
    ['/v2/caf%C3%A9/x', '/v2/caf%C3%A9/x'],
  ];
  for (const [sent, expected] of cases) {
    const tag = `norm-${sent}`;
    const res = await rawGet(sent, tag);
    t.is(res.status, 200, res.body.toString());
    t.is(arrived(tag)[0]?.url, expected);
  }
});

test('headers a caller could impersonate with never reach the target; X-Forwarded-For names the caller as the gateway saw it', async (t) => {
  const forged = {
    'Client-Cert': ':AAAA:',
    'Client-Cert-Chain': ':AAAA:',
    'X-Forwarded-Client-Cert': 'By=spiffe://x;Subject="CN=admin"',
    'X-SSL-Client-Cert': 'forged',
    'X-SSL-Client-S-DN': 'CN=admin',
    'X-Client-Verify': 'SUCCESS',
    'X-ARR-ClientCert': 'forged',
    'X-Forwarded-User': 'admin',
    'X-Remote-User': 'admin',
    'Proxy-Authorization': 'Basic YWRtaW46YWRtaW4=',
    'X-Forwarded-For': '10.9.9.9',
  };
  const res = await get('/v2/x', 'forged', { client: edge, headers: forged });
  t.is(res.status, 200);
  const [up] = arrived('forged');
  for (const h of Object.keys(forged).filter((k) => k !== 'X-Forwarded-For')) t.is(up?.headers[h.toLowerCase()], undefined, h);
  t.is(up?.headers['x-forwarded-for'], '127.0.0.1', 'a caller cannot choose its own address');
});

test('pass_authorization: the caller\'s own Authorization (a registry token) reaches the target; client-certificate headers still do not', async (t) => {
  const res = await get('/tokens/v2/x', 'tokens', { client: plc, headers: { Authorization: 'Bearer registry-token', 'Client-Cert': ':AAAA:' } });
  t.is(res.status, 200);
  const [up] = arrived('tokens');
  t.is(up?.headers.authorization, 'Bearer registry-token');
  t.is(up?.headers['client-cert'], undefined);
  // a route that passes Authorization never reads it: Basic does not authenticate there
  assertReason(t, await get('/tokens/v2/x', 'tokens-basic', { auth: basic('registry', 'registry-pw') }), 401);
  refusedBeforeTarget(t, 'tokens-basic');
});

test('a kept-alive connection is checked on every request: an allowed one does not open the door for the next', async (t) => {
  const ok = rawRequest('GET', '/v2/ka-1', { 'X-Test': 'ka-1' });
  const closed = rawRequest('GET', '/closed/ka-2', { 'X-Test': 'ka-2', Connection: 'close' });
  const r = await wireExchange(gw.port, [ok, closed], { ca: gw.caPem, ...withCert(edge), until: { responses: 2 } });
  t.deepEqual(r.responses.map((x) => x.status), [200, 403]);
  t.is(arrived('ka-1').length, 1);
  refusedBeforeTarget(t, 'ka-2');
});

test('configuration: pass_authorization with a user: identity, and cert: identities without client_trust, are refused at start', (t) => {
  const cfg = (route: Record<string, unknown>) => () => validateConfig({ proxy: [{ prefix: '/v2/', target: 'https://127.0.0.1:1', ...route }] });
  t.throws(cfg({ identities: ['user:registry'], pass_authorization: true }), { message: /pass_authorization/ });
  t.throws(cfg({ identities: ['cert:device/*'] }), { message: /client_trust/ });
  t.throws(cfg({ prefix: '/v2/../' }), { message: /prefix/ });
  t.notThrows(cfg({ identities: ['cert:device/*'], client_trust: ['x.pem'], pass_authorization: true }));
});

test('the client_trust anchors of a route are offered in the TLS handshake', async (t) => {
  const res = await get('/v2/x', 'anchors', { client: edge });
  t.is(res.status, 200);
  // a client (curl, OpenSSL) picks its certificate from the CA names the server lists
  const names = await caNamesOffered();
  t.true(names.some((n) => n.includes('devices CA')), names.join(' | '));
});

/** The distinguished names the server lists in its CertificateRequest, as openssl s_client prints them. */
async function caNamesOffered(): Promise<string[]> {
  const { run } = await import('../helpers/cli.js');
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${gw.port}`, '-tls1_2', '-servername', 'localhost'], { input: '', timeoutMs: 10_000 });
  const out = r.stdout.toString();
  const block = /Acceptable client certificate CA names\n([\s\S]*?)\n(?:Requested|Client Certificate Types|---)/.exec(out)?.[1] ?? '';
  return block.split('\n').filter(Boolean);
}
