// Issue 11, revocation reaching every layer, on the shipped three-layer
// hierarchy (config/hierarchy) with real TLS, Redis and openssl: the operator
// revokes at the top with the real `estgw certs revoke` while it runs; the
// middle and the bottom fetch the top's CRLs (crl_refresh = 1 s), refuse the
// revoked certificate and everything below a revoked CA, and serve the CRLs
// at their own /crl/. The bottom runs on a clock the test can move, for the
// stale policy; a second bottom replica on the same Redis prefix and with
// crl_stale = "closed" shows the shared copy and the other policy.
import test from 'ava';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { toPem } from '../../src/est/base64.js';
import { parseCrl } from '../../src/est/crl.js';
import { type RunningGateway, startGateway } from '../../src/server/gateway.js';
import { SHARED_REDIS_URL, captureLogger, deleteKeys, eventually } from '../cache/helpers.js';
import { type RunResult, run } from '../helpers/cli.js';
import { assertReason, issuedCert } from '../helpers/est.js';
import { basic, httpPlain, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { type Layer, type ShippedHierarchy, post, startShippedHierarchy } from './shipped.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const DEVICE = basic('estuser', 'estpwd');
const DAY = 86_400_000;
const prefix = `estgw:test:revocation:${randomBytes(4).toString('hex')}:`;
const bottomPrefix = `${prefix}bottom:`;

let h: ShippedHierarchy;
/** How far the bottom's clock (and the second replica's) is ahead of the wall clock. */
let skew = 0;
const bottomLog = captureLogger();
let replica: RunningGateway | undefined;
let replicaDir: string | undefined;

interface Device {
  cert: X509Certificate;
  keyPem: string;
  serial: string;
  cn: string;
}
let revokedDevice: Device;
let sibling: Device;
let islanded: Device;

const serialOf = (x: X509Certificate) => x.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');

test.before(async () => {
  h = await startShippedHierarchy(prefix, {
    settings: {
      middle: ['labels.default.upstream.crl_refresh=1', 'labels.ra.upstream.crl_refresh=1'],
      bottom: [
        'labels.default.upstream.crl_refresh=1',
        'server.crl_listen="127.0.0.1:0"',
        `redis.url="${SHARED_REDIS_URL}"`,
        `redis.key_prefix="${bottomPrefix}"`,
      ],
    },
    gateway: { bottom: { logger: bottomLog.logger, now: () => Date.now() + skew } },
  });
});

test.after.always(async () => {
  await replica?.close();
  if (replicaDir) await rm(replicaDir, { recursive: true, force: true });
  await h?.close();
  const redis = new Redis(SHARED_REDIS_URL);
  await deleteKeys(redis, prefix);
  await redis.quit();
});

/** `estgw certs revoke` on the top's data directory while the top runs, as an operator does. */
async function revokeAtTop(serial: string, reason: string): Promise<RunResult> {
  const config = join(h.ws, 'config', 'hierarchy', 'top.toml');
  return run(process.execPath, [MAIN, 'certs', 'revoke', serial, '--reason', reason, '--config', config, '--data-dir', h.top.cfg.server.data_dir], {
    env: { ...process.env, ESTGW_DATA_DIR: '' },
    timeoutMs: 60_000,
  });
}

interface IndexEntry {
  name: string;
  issuer: string;
  keyId: string;
  number: number;
  nextUpdate: string;
}
const origin = (gw: RunningGateway) => new URL(gw.url).origin;
async function crlIndex(gw: RunningGateway, trust: string): Promise<IndexEntry[]> {
  const res = await httpsRequest(`${origin(gw)}/crl/`, { ca: trust });
  if (res.status !== 200) throw new Error(`GET /crl/: ${res.status} ${res.body}`);
  return (JSON.parse(res.body.toString()) as { crls: IndexEntry[] }).crls;
}
const issuingEntry = (index: IndexEntry[]) => index.find((e) => /Plant issuing CA/.test(e.issuer));
/** The issuing CA's CRL number as `layer` serves it (0: none yet). */
const issuingNumber = async (layer: Layer) => issuingEntry(await crlIndex(layer.gw, layer.trust))?.number ?? 0;

async function enrollDevice(t: Parameters<typeof issuedCert>[0], cn: string): Promise<Device> {
  const csr = await makeCsr(cn, { subjectAltNames: [{ type: 'dns', value: `${cn}.plant.local` }] });
  const cert = issuedCert(t, await post(h.bottom, csr.b64, { auth: DEVICE }));
  return { cert, keyPem: csr.keyPem, serial: serialOf(cert), cn };
}
const renewAt = async (layer: Layer, d: Device, o: { cert?: string } = {}) =>
  post(layer, (await makeCsr(d.cn, { key: createPrivateKey(d.keyPem), subjectAltNames: [{ type: 'dns', value: `${d.cn}.plant.local` }] })).b64, {
    op: 'simplereenroll',
    cert: o.cert ?? d.cert.toString(),
    key: d.keyPem,
  });


test.serial('a device enrolled through two RAs and revoked at the top is refused at the bottom within one CRL refresh, which serves the new CRL', async (t) => {
  revokedDevice = await enrollDevice(t, 'device-r');
  sibling = await enrollDevice(t, 'device-s');
  t.regex(revokedDevice.cert.issuer, /Plant issuing CA/, 'the top signed, through the middle and the bottom as RAs');
  // the bottom already holds the top's CRLs, fetched through the middle
  const before = await issuingNumber(h.bottom);
  t.true(before >= 1);
  t.is(await issuingNumber(h.middle), before);

  const r = await revokeAtTop(revokedDevice.serial, 'keyCompromise');
  t.is(r.code, 0, r.stderr);
  t.true(await eventually(async () => (await issuingNumber(h.bottom)) > before, 15_000), 'the bottom serves the new CRL of the issuing CA');

  // refused as the certificate being renewed and as a client certificate, with serial, date and reason
  const why = new RegExp(`the client certificate \\(serial ${revokedDevice.serial}\\) was revoked on \\S+: keyCompromise`);
  assertReason(t, await renewAt(h.bottom, revokedDevice), 403, why);
  assertReason(t, await post(h.bottom, (await makeCsr('device-r2')).b64, { cert: revokedDevice.cert.toString(), key: revokedDevice.keyPem }), 403, why);

  // the CRL it serves, over HTTPS and plain HTTP, is the top's, naming the certificate
  const entry = issuingEntry(await crlIndex(h.bottom.gw, h.rootPem))!;
  const https = await httpsRequest(`${origin(h.bottom.gw)}/crl/${entry.name}.crl`, { ca: h.rootPem });
  t.is(https.status, 200);
  t.is(https.headers['content-type'], 'application/pkix-crl');
  const plain = await httpPlain(h.bottom.gw.crlPort!, `/crl/${entry.name}.crl`);
  t.true(plain.body.equals(https.body));
  const crl = parseCrl(https.body);
  t.is(Number(crl.number), entry.number);
  t.deepEqual(crl.revoked.map((e) => [e.serialHex, e.reason]), [[revokedDevice.serial, 'keyCompromise']]);
  t.true(https.body.equals(h.top.gw.ledger!.crl('issuing')!), 'byte for byte what the top signed');

  // a sibling that was not revoked still renews through both RAs
  sibling = { ...sibling, cert: issuedCert(t, await renewAt(h.bottom, sibling)) };
  sibling.serial = serialOf(sibling.cert);
});

test.serial('openssl verify -crl_check_all with the CRLs fetched from the bottom rejects the revoked certificate and accepts its sibling', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'estgw-revocation-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const index = await crlIndex(h.bottom.gw, h.rootPem);
  t.true(index.length >= 3, JSON.stringify(index));
  const pems: string[] = [];
  for (const e of index) {
    const res = await httpsRequest(`${origin(h.bottom.gw)}/crl/${e.name}.crl`, { ca: h.rootPem });
    t.is(res.status, 200, e.name);
    pems.push(toPem('X509 CRL', res.body));
  }
  const files = { root: join(dir, 'root.pem'), chain: join(dir, 'chain.pem'), crls: join(dir, 'crls.pem'), revoked: join(dir, 'revoked.pem'), sibling: join(dir, 'sibling.pem') };
  await writeFile(files.root, h.rootPem);
  await writeFile(files.chain, h.top.gw.pki.cas.get('issuing')!.cert.toString());
  await writeFile(files.crls, pems.join(''));
  await writeFile(files.revoked, revokedDevice.cert.toString());
  await writeFile(files.sibling, sibling.cert.toString());
  const verify = async (f: string) => {
    const r = await run('openssl', ['verify', '-crl_check_all', '-CAfile', files.root, '-untrusted', files.chain, '-CRLfile', files.crls, f]);
    return `${r.stdout.toString()}${r.stderr}`;
  };
  t.regex(await verify(files.revoked), /certificate revoked/);
  t.regex(await verify(files.sibling), /: OK/);
});

test.serial('the middle down: the bottom keeps serving the last CRLs and refusing; a second bottom replica on the same Redis prefix has them without fetching', async (t) => {
  const before = await crlIndex(h.bottom.gw, h.rootPem);
  await h.stopMiddle();
  t.true(await eventually(() => bottomLog.count('cannot fetch the CRLs') > 0, 15_000), 'the bottom tried the middle and failed');
  t.deepEqual(await crlIndex(h.bottom.gw, h.rootPem), before);
  assertReason(t, await renewAt(h.bottom, revokedDevice), 403, /revoked on \S+: keyCompromise/);

  // islanded meanwhile: the bottom's own sub-CA signs (kept for the sub-CA test below)
  const csr = await makeCsr('device-i', { subjectAltNames: [{ type: 'dns', value: 'device-i.plant.local' }] });
  const cert = issuedCert(t, await post(h.bottom, csr.b64, { auth: DEVICE }));
  t.regex(cert.issuer, /bottom layer CA/);
  islanded = { cert, keyPem: csr.keyPem, serial: serialOf(cert), cn: 'device-i' };

  // replica B: same configuration and PKI, its own data directory, crl_stale = closed, the bottom's clock
  replicaDir = await mkdtemp(join(tmpdir(), 'estgw-bottom-b-'));
  const cfg = h.bottom.cfg;
  const replicaLog = captureLogger();
  replica = await startGateway(
    { ...cfg, server: { ...cfg.server, listen: '127.0.0.1:0', crl_listen: undefined, data_dir: replicaDir, crl_stale: 'closed' } },
    { pki: h.bottom.gw.pki, logger: replicaLog.logger, now: () => Date.now() + skew },
  );
  t.true(await eventually(() => replicaLog.count('cannot fetch the CRLs') > 0, 15_000), 'replica B could not reach the middle itself');
  const replicaLayer: Layer = { gw: replica, cfg, url: replica.url, trust: h.rootPem };
  const fromReplica = await crlIndex(replica, h.rootPem);
  t.deepEqual(fromReplica.filter((e) => e.name !== 'bottom'), before.filter((e) => e.name !== 'bottom'), 'the parent\'s CRLs, from Redis: the middle is down');
  assertReason(t, await renewAt(replicaLayer, revokedDevice), 403, /revoked on \S+: keyCompromise/);
});

test.serial('stale CRLs, both policies: past nextUpdate, "open" checks anyway (warns once, counts, /readyz says so), "closed" answers 503 with Retry-After', async (t) => {
  const replicaLayer: Layer = { gw: replica!, cfg: h.bottom.cfg, url: replica!.url, trust: h.rootPem };
  const ready = async (gw: RunningGateway) => JSON.parse((await httpsRequest(`${origin(gw)}/readyz`, { ca: h.rootPem })).body.toString()) as { crls: Record<string, string> };
  const name = issuingEntry(await crlIndex(h.bottom.gw, h.rootPem))!.name;
  t.is((await ready(h.bottom.gw)).crls[name], 'ok');

  skew = 8 * DAY; // the top's CRLs are valid for 7 days
  t.regex((await ready(h.bottom.gw)).crls[name]!, /past its nextUpdate/);
  // open (the bottom): the revocation in the stale CRL still counts, the sibling goes through (islanded: the middle is down)
  assertReason(t, await renewAt(h.bottom, revokedDevice), 403, /revoked/);
  issuedCert(t, await renewAt(h.bottom, sibling));
  // the sibling's chain has two stale CRLs: the issuing CA's and the root's
  t.is(bottomLog.count('CRL past its nextUpdate'), 2);
  issuedCert(t, await renewAt(h.bottom, sibling));
  t.is(bottomLog.count('CRL past its nextUpdate'), 2, 'warned once per CRL');
  const metrics = await h.bottom.gw.metrics.registry.metrics();
  t.regex(metrics, new RegExp(`estgw_crl_stale_accepted_total\\{crl="${name}"\\} [1-9]`));
  t.regex(metrics, new RegExp(`estgw_upstream_crl_age_seconds\\{crl="${name}"\\} \\d+`));

  // closed (replica B): no answer on a CRL that cannot be trusted to be current
  const res = await renewAt(replicaLayer, sibling);
  assertReason(t, res, 503, new RegExp(`CRL "${name}" is past its nextUpdate`));
  t.truthy(res.headers['retry-after']);

  skew = 0;
  t.is((await ready(h.bottom.gw)).crls[name], 'ok');
});

test.serial('revoking a sub-CA at the top revokes what it issued: its islanded certificate is refused at the bottom, every layer serves the CRL that says so, openssl agrees', async (t) => {
  await h.startMiddle();
  const before = await issuingNumber(h.bottom);
  const subCa = h.bottom.gw.pki.cas.get('bottom')!;
  const subCaSerial = serialOf(subCa.cert);
  const r = await revokeAtTop(subCaSerial, 'caCompromise');
  t.is(r.code, 0, r.stderr);
  t.true(await eventually(async () => (await issuingNumber(h.bottom)) > before, 15_000));
  // at the bottom the islanded certificate's own CA is a local one, the CA above it revoked it
  const why = /the client certificate's issuing CA "CN=bottom layer CA,OU=Supervisory,O=Plant" \(serial [0-9a-f]+\) was revoked on \S+: caCompromise/;
  assertReason(t, await renewAt(h.bottom, islanded), 403, why);
  // replica B got the new CRL through Redis too (its parent is the same middle)
  t.true(await eventually(async () => (await issuingNumber({ gw: replica!, cfg: h.bottom.cfg, url: replica!.url, trust: h.rootPem })) > before, 15_000));
  assertReason(t, await renewAt({ gw: replica!, cfg: h.bottom.cfg, url: replica!.url, trust: h.rootPem }, islanded), 403, why);
  // every layer serves the issuing CA's CRL naming the sub-CA
  for (const layer of [h.top, h.middle, h.bottom]) {
    const entry = issuingEntry(await crlIndex(layer.gw, layer.trust))!;
    const res = await httpsRequest(`${origin(layer.gw)}/crl/${entry.name}.crl`, { ca: layer.trust });
    t.true(parseCrl(res.body).revoked.some((e) => e.serialHex === subCaSerial && e.reason === 'caCompromise'), layer.url);
  }
  // a relying party with the bottom's CRLs and chain refuses the islanded certificate for its revoked CA
  const dir = await mkdtemp(join(tmpdir(), 'estgw-revocation-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const crls = await Promise.all((await crlIndex(h.bottom.gw, h.rootPem)).map(async (e) => toPem('X509 CRL', (await httpsRequest(`${origin(h.bottom.gw)}/crl/${e.name}.crl`, { ca: h.rootPem })).body)));
  await writeFile(join(dir, 'crls.pem'), crls.join(''));
  await writeFile(join(dir, 'chain.pem'), toPem('CERTIFICATE', subCa.certDer) + h.top.gw.pki.cas.get('issuing')!.cert.toString());
  await writeFile(join(dir, 'root.pem'), h.rootPem);
  await writeFile(join(dir, 'islanded.pem'), islanded.cert.toString());
  const v = await run('openssl', ['verify', '-crl_check_all', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), '-CRLfile', join(dir, 'crls.pem'), join(dir, 'islanded.pem')]);
  t.regex(`${v.stdout.toString()}${v.stderr}`, /certificate revoked/);
  // the sibling, issued by the top's issuing CA, is not below the revoked sub-CA
  issuedCert(t, await renewAt(h.bottom, sibling));

  // the bottom's own CA is the revoked one: islanded, it signs nothing more (503 with why), and /readyz says so
  await h.stopMiddle();
  const res = await post(h.bottom, (await makeCsr('device-j', { subjectAltNames: [{ type: 'dns', value: 'device-j.plant.local' }] })).b64, { auth: DEVICE });
  assertReason(t, res, 503, /this layer's CA "bottom" \(serial [0-9a-f]+\) was revoked by its parent on \S+: caCompromise/);
  const ready = JSON.parse((await httpsRequest(`${origin(h.bottom.gw)}/readyz`, { ca: h.rootPem })).body.toString()) as { cas?: Record<string, string> };
  t.regex(ready.cas?.bottom ?? '', /revoked by its parent on \S+: caCompromise/);
  await h.startMiddle();
});

test.serial('a revoked RA certificate stops the layer below from forwarding: the bottom\'s enrollments fail with the middle\'s reason', async (t) => {
  const before = await issuingNumber(h.middle);
  const ra = new X509Certificate(h.bottomRa.certPem);
  const r = await revokeAtTop(serialOf(ra), 'privilegeWithdrawn');
  t.is(r.code, 0, r.stderr);
  t.true(await eventually(async () => (await issuingNumber(h.middle)) > before, 15_000), 'the middle has the new CRL');
  const res = await post(h.bottom, (await makeCsr('device-after', { subjectAltNames: [{ type: 'dns', value: 'device-after.plant.local' }] })).b64, { auth: DEVICE });
  assertReason(t, res, 403, new RegExp(`the RA certificate \\(serial ${serialOf(ra)}\\) was revoked on \\S+: privilegeWithdrawn`));
});
