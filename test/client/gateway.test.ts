// The edge client against the real gateway over TLS: bootstrap by pin, enroll
// with Basic and with a bootstrap certificate, reenroll with and without a new
// key, 202 then success, server down then back, an expired certificate renewed
// through the bootstrap credential, PoP linking, an Edge CA, the CLI's exit codes.
import test from 'ava';
import { spawn } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { type IncomingMessage, get as httpGet } from 'node:http';
import { createServer as createHttpsServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientDaemon } from '../../src/client/daemon.js';
import { readPairFiles } from '../../src/client/pair.js';
import type { CertSpec } from '../../src/client/spec.js';
import { readStatus } from '../../src/client/status.js';
import { decodeEstBase64, fromPemAll, toPem } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { parseCsr } from '../../src/est/csr.js';
import { buildGeneralNames, buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';
import { Signer } from '../../src/pki/issuance.js';
import { generateKey, privateKeyPem, spkiDer } from '../../src/pki/keys.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { CLI_ENTRY, estgw } from './support/client-cli.js';
import { type SpecOverrides, gatewaySpec } from './support/gateway-spec.js';
import { freePort } from './support/net.js';
import { type TestCa, type TestPair, makeCa, makePair } from './support/pki.js';

let dir: string;
let gw: TestGateway;
let bootCa: TestCa;
let boot: TestPair;
const D = 86_400_000;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-client-gw-'));
  bootCa = await makeCa(dir, 'manufacturer bootstrap root');
  boot = await makePair(bootCa, 'boot-0042', dir, 'bootstrap', { days: 3650 });
  gw = await startTestGateway({
    clientTrust: [bootCa.file],
    labels: {
      default: {},
      pop: { require_pop: true },
      edge: { grants: [{ identity: ['user:estuser', 'cert:device/*'], common_names: ['*'], allow_ca: true }] },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

let seq = 0;
function spec(o: SpecOverrides = {}): CertSpec {
  return gatewaySpec(gw, dir, o.name ?? `cert${++seq}`, o);
}

const daemonFor = (certs: CertSpec[], statusName = `status-${++seq}.json`) =>
  new ClientDaemon({ certs, statusFile: join(dir, statusName), logLevel: 'silent' });

/** The pair on disk matches and chains to the gateway's root. */
async function assertGoodPair(t: import('ava').ExecutionContext, s: { certFile: string; keyFile: string }, cn: string) {
  const p = await readPairFiles(s.certFile, s.keyFile);
  const x = new X509Certificate(p.certPem);
  t.is(x.subject, `CN=${cn}`);
  t.true(x.verify(new X509Certificate(gw.caPem).publicKey), 'chains to the gateway root');
  t.is((await stat(s.keyFile)).mode & 0o777, 0o600);
  return { ...p, x };
}

const audits = (subject: string) => gw.audit().filter((l) => l.subject === `CN=${subject}`);

test('RFC 7030 §4.1.1: bootstrap by pin stores the root; a wrong pin stores nothing and fails on one line', async (t) => {
  const root = fromPemAll(gw.caPem, 'CERTIFICATE')[0]!;
  const pin = createHash('sha256').update(root).digest('hex').replace(/(..)(?!$)/g, '$1:').toUpperCase();
  const trust = join(dir, 'pinned.pem');
  const bad = await estgw(['cacerts', '--url', gw.url, '--pin', 'ab'.repeat(32), '--trust', trust]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^estgw: cacerts: no root certificate matches the pin abab/);
  t.is(bad.stderr.trim().split('\n').length, 1);
  await t.throwsAsync(stat(trust));
  const ok = await estgw(['cacerts', '--url', gw.url, '--pin', pin, '--trust', trust, '--out', join(dir, 'cacerts.pem')]);
  t.is(ok.code, 0, ok.stderr);
  t.true(fromPemAll(await readFile(trust, 'utf8'), 'CERTIFICATE')[0]!.equals(root));
  t.true(fromPemAll(await readFile(join(dir, 'cacerts.pem'), 'utf8'), 'CERTIFICATE').some((c) => c.equals(root)));
  // from now on the stored anchor verifies the server: a second run needs no pin
  const again = await estgw(['cacerts', '--url', gw.url, '--trust', trust]);
  t.is(again.code, 0);
  t.regex(again.stdout.toString(), /BEGIN CERTIFICATE/);
});

test('CLI enroll with Basic (pre-emptive and after the challenge); a wrong password exits 1 with one line', async (t) => {
  for (const basic of ['preemptive', 'challenge']) {
    const out = join(dir, `cli-${basic}.pem`);
    const r = await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--basic', basic, '--cn', `cli-${basic}`, '--dns', 'cli.plant.local', '--out', out, '--out-key', `${out}.key`]);
    t.is(r.code, 0, r.stderr);
    const p = await assertGoodPair(t, { certFile: out, keyFile: `${out}.key` }, `cli-${basic}`);
    t.deepEqual(p.leaf.subjectAltNames, [{ type: 'dns', value: 'cli.plant.local' }]);
  }
  await writeFile(join(dir, 'wrong-pw'), 'nope\n');
  const bad = await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass-file', join(dir, 'wrong-pw'), '--cn', 'x', '--out', join(dir, 'x.pem')]);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'estgw: simpleenroll: server answered 401 Unauthorized: invalid user name or password\n');
  const usage = await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--cn', 'x']);
  t.is(usage.code, 2);
  t.is(usage.stderr, 'estgw: --out is required\n');
});

test('CLI enroll without --cn or --subject asks for this host\'s name as CN and says so on stderr', async (t) => {
  const out = join(dir, 'cli-hostname.pem');
  const r = await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, `estgw: no --cn or --subject: requesting CN=${hostname()}, this host's name\n`);
  await assertGoodPair(t, { certFile: out, keyFile: join(dir, 'cli-hostname.key.pem') }, hostname());
});

test('CLI reenroll and serverkeygen', async (t) => {
  const out = join(dir, 'cli-re.pem');
  t.is((await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'cli-re', '--out', out])).code, 0);
  const before = await readPairFiles(out, join(dir, 'cli-re.key.pem'));
  const r = await estgw(['reenroll', '--url', gw.url, '--trust', gw.caFile, '--cert', out, '--key', join(dir, 'cli-re.key.pem'), '--rotate-key', '--out', join(dir, 'cli-re2.pem')]);
  t.is(r.code, 0, r.stderr);
  const after = await assertGoodPair(t, { certFile: join(dir, 'cli-re2.pem'), keyFile: join(dir, 'cli-re2.key.pem') }, 'cli-re');
  t.false(spkiDer(after.key).equals(spkiDer(before.key)));
  t.is(audits('cli-re').at(-1)!.reenroll, 'rekey');
  const k = await estgw(['serverkeygen', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'cli-skg', '--out', join(dir, 'skg.pem'), '--out-key', join(dir, 'skg.key')]);
  t.is(k.code, 0, k.stderr);
  await assertGoodPair(t, { certFile: join(dir, 'skg.pem'), keyFile: join(dir, 'skg.key') }, 'cli-skg');
});

test('daemon: first enrollment with a bootstrap certificate alone', async (t) => {
  const s = spec({ name: 'boot-enroll', auth: { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile } });
  const [r] = await daemonFor([s]).runOnce();
  t.true(r!.ok, r!.error);
  await assertGoodPair(t, s, 'boot-enroll.plant.local');
  const a = audits('boot-enroll.plant.local').at(-1)!;
  t.is(a.op, 'simpleenroll');
  t.is(a.identity, 'cert:device/boot-0042');
});

test('daemon: the bootstrap certificate is traded for an EST identity, which is then presented for the device certificate', async (t) => {
  const bootAuth = { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile };
  const id = spec({ name: 'est-id-gw', auth: bootAuth, method: 'simpleenroll' });
  const dev = spec({ name: 'device-gw', auth: { ...bootAuth, identity: 'est-id-gw' } });
  const reports = await daemonFor([dev, id]).runOnce();
  t.deepEqual(reports.map((r) => [r.name, r.ok]), [['est-id-gw', true], ['device-gw', true]]);
  t.is(audits('est-id-gw.plant.local').at(-1)!.identity, 'cert:device/boot-0042');
  t.is(audits('device-gw.plant.local').at(-1)!.identity, 'cert:device/est-id-gw.plant.local');
  await assertGoodPair(t, dev, 'device-gw.plant.local');
});

test('daemon: renews by simplereenroll, presenting the certificate, with and without a new key', async (t) => {
  for (const rotateKey of [true, false]) {
    const s = spec({ name: `reenroll-${rotateKey}`, rotateKey, threshold: '3650d' });
    const d = daemonFor([s]);
    t.true((await d.runOnce())[0]!.ok);
    const first = await assertGoodPair(t, s, s.subject[0]![1]);
    await d.init();
    const [r] = await d.runOnce();
    t.true(r!.ok, r!.error);
    const second = await assertGoodPair(t, s, s.subject[0]![1]);
    t.not(second.x.serialNumber, first.x.serialNumber);
    t.is(spkiDer(second.key).equals(spkiDer(first.key)), !rotateKey);
    const a = audits(s.subject[0]![1]).at(-1)!;
    t.is(a.op, 'simplereenroll');
    t.is(a.identity, `cert:device/${s.subject[0]![1]}`);
    t.is(a.reenroll, rotateKey ? 'rekey' : 'renew');
  }
});

test('daemon: an expired certificate is renewed through the bootstrap credential', async (t) => {
  const s = spec({ name: 'expired', auth: { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile } });
  // a certificate from the gateway's own CA that expired minutes ago
  const key = await generateKey('p256');
  const spki = spkiDer(key);
  const old = new Signer(gw.gateway.pki.cas.get('root')!).issue(
    { subjectDer: buildName(s.subject), spki, key: describeSpki(spki), validityDays: 1 / 1440, extKeyUsage: [OID.clientAuth] },
    new Date(Date.now() - 4 * 60_000),
  );
  t.true(old.notAfter.getTime() < Date.now());
  await writeFile(s.certFile, toPem('CERTIFICATE', old.der));
  await writeFile(s.keyFile, privateKeyPem(key), { mode: 0o600 });
  const [r] = await daemonFor([s]).runOnce();
  t.true(r!.ok, r!.error);
  const p = await assertGoodPair(t, s, 'expired.plant.local');
  t.true(p.leaf.notAfter.getTime() > Date.now() + D);
  const a = audits('expired.plant.local').at(-1)!;
  t.is(a.op, 'simpleenroll');
  t.is(a.identity, 'cert:device/boot-0042');
});

test('daemon: PoP linking when the label asks for it in csrattrs (tls-unique over TLS 1.2); without it the server refuses', async (t) => {
  const good = spec({ name: 'pop-auto', label: 'pop', pop: 'auto' });
  const [r] = await daemonFor([good]).runOnce();
  t.true(r!.ok, r!.error);
  t.is(audits('pop-auto.plant.local').at(-1)!.tls, 'TLSv1.2');
  const bad = spec({ name: 'pop-never', label: 'pop', pop: 'never' });
  const [r2] = await daemonFor([bad]).runOnce();
  t.false(r2!.ok);
  t.regex(r2!.error!, /server answered 400 Bad Request: label "pop" requires proof-of-possession/);
});

test('daemon: an Edge CA certificate (basicConstraints CA:TRUE)', async (t) => {
  const s = spec({ name: 'edge-ca', label: 'edge', ca: true });
  const [r] = await daemonFor([s]).runOnce();
  t.true(r!.ok, r!.error);
  const p = await assertGoodPair(t, s, 'edge-ca.plant.local');
  t.true(p.leaf.basicConstraints?.ca);
});

/** A TLS front for the gateway that holds the first `holds` enrollments with 202 + Retry-After: 1. */
async function pendingFront(holds: number) {
  const tlsKey = await generateKey('p256');
  const spki = spkiDer(tlsKey);
  const cert = new Signer(gw.gateway.pki.cas.get('root')!).issue({
    subjectDer: buildName([['CN', 'pending-front']]), spki, key: describeSpki(spki), validityDays: 1, extKeyUsage: [OID.serverAuth],
    subjectAltNameDer: buildGeneralNames([{ type: 'ip', value: '127.0.0.1' }]),
  });
  const csrs: Buffer[] = [];
  let held = 0;
  const server = createHttpsServer({ cert: toPem('CERTIFICATE', cert.der), key: privateKeyPem(tlsKey) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url!.endsWith('/simpleenroll')) csrs.push(decodeEstBase64(body));
      if (req.url!.endsWith('/simpleenroll') && held < holds) {
        held++;
        res.writeHead(202, { 'Retry-After': '1', 'Content-Length': '0' }).end();
        return;
      }
      const up = request(`${gw.url.replace(/\/\.well-known\/est$/, '')}${req.url}`, { method: req.method, headers: req.headers, ca: gw.caPem }, (ur: IncomingMessage) => {
        res.writeHead(ur.statusCode!, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `https://127.0.0.1:${port}/.well-known/est`, csrs, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('202 then success: the CLI waits it out; the daemon retries after Retry-After with the same key', async (t) => {
  const front = await pendingFront(1);
  try {
    const r = await estgw(['enroll', '--url', front.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'held-cli', '--wait', '10', '--out', join(dir, 'held.pem')]);
    t.is(r.code, 0, r.stderr);
    await assertGoodPair(t, { certFile: join(dir, 'held.pem'), keyFile: join(dir, 'held.key.pem') }, 'held-cli');
  } finally {
    await front.close();
  }
  const front1 = await pendingFront(1);
  try {
    const noWait = await estgw(['enroll', '--url', front1.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'held-now', '--wait', '0', '--out', join(dir, 'held-now.pem')]);
    t.is(noWait.code, 75, 'EX_TEMPFAIL while the server holds the request');
    t.regex(noWait.stderr, /^estgw: simpleenroll: the server holds the request for approval; retry after 1 s\n$/);
  } finally {
    await front1.close();
  }
  const front2 = await pendingFront(1);
  const s = spec({ name: 'held-daemon', url: front2.url, retry: '1s' });
  const d = daemonFor([s]);
  try {
    await d.start();
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !(await stat(s.certFile).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 100));
    await d.stop();
    const p = await assertGoodPair(t, s, 'held-daemon.plant.local');
    const csrKeys = front2.csrs.map((c) => parseCsr(c).spki);
    t.is(csrKeys.length, 2);
    t.true(csrKeys[0]!.equals(csrKeys[1]!), 'resent with the key of the held request');
    t.true(spkiDer(p.key).equals(csrKeys[0]!));
  } finally {
    await d.stop();
    await front2.close();
  }
});

test('server down for a while, then back: the daemon keeps retrying and enrolls when it returns', async (t) => {
  const port = await freePort();
  const data = join(dir, 'gw-down');
  const first = await startTestGateway({ dataDir: data, server: { listen: `127.0.0.1:${port}` } });
  const trust = join(dir, 'down-trust.pem');
  await writeFile(trust, first.caPem);
  await first.close();
  const s = spec({ name: 'down', url: `https://127.0.0.1:${port}/.well-known/est`, trustFiles: [trust], retry: '1s' });
  const statusName = 'down-status.json';
  const d = daemonFor([s], statusName);
  let second: TestGateway | undefined;
  try {
    await d.start();
    await new Promise((r) => setTimeout(r, 1500));
    const st = await readStatus(join(dir, statusName));
    t.regex(st.certs[0]!.lastError!, /cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/);
    t.true(st.certs[0]!.failures >= 1);
    await t.throwsAsync(stat(s.certFile));
    second = await startTestGateway({ dataDir: data, server: { listen: `127.0.0.1:${port}` } });
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !(await stat(s.certFile).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 100));
    await d.stop();
    const p = await readPairFiles(s.certFile, s.keyFile);
    t.true(new X509Certificate(p.certPem).verify(new X509Certificate(second.caPem).publicKey));
    t.is(parseCertificate(fromPemAll(p.certPem, 'CERTIFICATE')[0]!).spki.compare(spkiDer(p.key)), 0);
  } finally {
    await d.stop();
    await second?.close();
  }
});

test('the tutorial\'s config.toml (ports and paths adapted) gets the device identity certificate; status prints it', async (t) => {
  const tutorial = (await readFile(new URL('../../../test/fixtures/client/tutorial-config.toml', import.meta.url), 'utf8'))
    .replace('file:///var/aziot/certs/cacert.crt.pem', `file://${gw.caFile}`)
    .replace('https://localhost:8085/.well-known/est', gw.url.replace('127.0.0.1', 'localhost'));
  const cfg = join(dir, 'aziot-config.toml');
  await writeFile(cfg, tutorial);
  const out = join(dir, 'aziot-out');
  const r = await estgw(['client', 'run', '--aziot-config', cfg, '--out-dir', out, '--once']);
  t.is(r.code, 0, r.stderr);
  await assertGoodPair(t, { certFile: join(out, 'device-id.cert.pem'), keyFile: join(out, 'device-id.key.pem') }, 'myiotedgedevice');
  t.is(audits('myiotedgedevice').at(-1)!.identity, 'user:estuser');
  const st = await estgw(['client', 'status', '--aziot-config', cfg, '--out-dir', out]);
  t.is(st.code, 0, st.stderr);
  t.regex(st.stdout.toString(), /device-id .*\n  subject +CN=myiotedgedevice/);
  t.regex(st.stdout.toString(), /last error +-/);
  t.regex(st.stdout.toString(), /revocation +not revoked \(CRL #\d+/, 'IoT Edge configurations are checked against the CRLs too');
});

test('config.toml without trusted_certs trusts the system roots: refused without the CA there, enrolled with it (NODE_EXTRA_CA_CERTS)', async (t) => {
  const tutorial = (await readFile(new URL('../../../test/fixtures/client/tutorial-config.toml', import.meta.url), 'utf8'))
    .replace(/trusted_certs = \[[^\]]*\]/, '')
    .replace('common_name = "myiotedgedevice"', 'common_name = "system-roots-device"')
    .replace('https://localhost:8085/.well-known/est', gw.url.replace('127.0.0.1', 'localhost'));
  t.false(tutorial.includes('trusted_certs'));
  const cfg = join(dir, 'aziot-system-roots.toml');
  await writeFile(cfg, tutorial);
  const out = join(dir, 'aziot-system-roots');
  const { NODE_EXTRA_CA_CERTS: _unset, ...env } = process.env;
  const refused = await estgw(['client', 'run', '--aziot-config', cfg, '--out-dir', out, '--once'], { env });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /certificate|verify|issuer/i);
  await t.throwsAsync(stat(join(out, 'device-id.cert.pem')));
  // the gateway's root joins the system store, as an operator installs a plant root with update-ca-certificates
  const r = await estgw(['client', 'run', '--aziot-config', cfg, '--out-dir', out, '--once'], { env: { ...env, NODE_EXTRA_CA_CERTS: gw.caFile } });
  t.is(r.code, 0, r.stderr);
  await assertGoodPair(t, { certFile: join(out, 'device-id.cert.pem'), keyFile: join(out, 'device-id.key.pem') }, 'system-roots-device');
});

test('client run as a process: Prometheus metrics, SIGHUP reloads the configuration, SIGTERM exits cleanly', async (t) => {
  const metricsPort = await freePort();
  const base = join(dir, 'proc');
  const cfg = join(dir, 'proc.toml');
  const toml = (names: string[]) => `
status_file = "${base}/status.json"
metrics_listen = "127.0.0.1:${metricsPort}"
[defaults]
url = "${gw.url}"
trust = "${gw.caFile}"
username = "estuser"
password = "estpwd"
${names.map((n) => `[certs.${n}]\ncommon_name = "${n}"\ncert = "${base}/${n}.pem"\nkey = "${base}/${n}.key"\n`).join('')}`;
  await writeFile(cfg, toml(['proc-a']));
  const child = spawn(process.execPath, [CLI_ENTRY, 'client', 'run', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const exists = (f: string) => stat(f).then(() => true, () => false);
  const waitFor = async (f: string) => {
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !(await exists(f))) await new Promise((r) => setTimeout(r, 50));
    return exists(f);
  };
  try {
    t.true(await waitFor(join(base, 'proc-a.pem')));
    await writeFile(cfg, toml(['proc-a', 'proc-b']));
    child.kill('SIGHUP');
    t.true(await waitFor(join(base, 'proc-b.pem')), 'the certificate added by the reload is enrolled');
    const scrape = () =>
      new Promise<string>((resolve, reject) => {
        httpGet(`http://127.0.0.1:${metricsPort}/metrics`, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    // the files land a moment before the counters move
    let metrics = await scrape();
    for (let i = 0; i < 40 && !metrics.includes('cert="proc-b",result="success"'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      metrics = await scrape();
    }
    t.regex(metrics, /estgw_client_cert_not_after_seconds\{cert="proc-a"\} \d+/);
    t.regex(metrics, /estgw_client_renewals_total\{cert="proc-b",result="success"\} 1/);
    child.kill('SIGTERM');
    t.is(await exited, 0);
  } finally {
    child.kill('SIGKILL');
  }
});
