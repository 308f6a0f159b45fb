// Issue 11, the edge client: revocation read from the CRLs its own gateway
// serves, through the real gateway on port 0, the real `estgw client` and
// `estgw certs revoke` processes and real openssl. A revoked certificate is
// replaced through the bootstrap credential only when reenroll_revoked allows;
// otherwise renewal stops and status says why. Forged or broken CRLs answer
// "unknown", never "not revoked".
import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientDaemon } from '../../src/client/daemon.js';
import { ClientMetrics } from '../../src/client/metrics.js';
import { readPairFiles } from '../../src/client/pair.js';
import { CrlRound, checkChain } from '../../src/client/revocation.js';
import type { CertSpec } from '../../src/client/spec.js';
import { readStatus } from '../../src/client/status.js';
import { fromPemAll } from '../../src/est/base64.js';
import { spkiDer } from '../../src/pki/keys.js';
import { run } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { estgw } from './support/client-cli.js';
import { type SpecOverrides, gatewaySpec } from './support/gateway-spec.js';
import { FakeClock } from './support/fakes.js';
import { type TestCa, type TestPair, makeCa, makePair, tlsFixture } from './support/pki.js';
import { httpResponse, startTinyServer } from './support/tiny-server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const H = 3600_000;

let dir: string;
let gw: TestGateway;
let bootCa: TestCa;
let boot: TestPair;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-client-rev-'));
  bootCa = await makeCa(dir, 'manufacturer bootstrap root');
  boot = await makePair(bootCa, 'boot-0077', dir, 'bootstrap', { days: 3650 });
  gw = await startTestGateway({ clientTrust: [bootCa.file], cas: { root: { crl_validity: '2h' } } });
});
test.after.always(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
const leafPem = async (file: string) => fromPemAll(await readFile(file, 'utf8'), 'CERTIFICATE').map((d) => new X509Certificate(d).toString())[0]!;

/** `estgw certs revoke` on the running gateway's data directory, as an operator runs it. */
async function revoke(serial: string, reason: string) {
  const r = await run(process.execPath, [MAIN, 'certs', 'revoke', serial, '--reason', reason, '--data-dir', gw.dataDir], { env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`certs revoke: ${r.stderr}`);
}

/** A client configuration file for one certificate; returns its paths. */
async function clientConfig(name: string, o: { auth: string; reenroll?: boolean; crlOut?: boolean }) {
  const base = join(dir, name);
  const cfg = join(dir, `${name}.toml`);
  await writeFile(
    cfg,
    `status_file = "${base}/status.json"
log_level = "silent"
${o.crlOut ? `[crl]\nout = "${base}/crls.pem"\n` : ''}
[defaults]
url = "${gw.url}"
trust = "${gw.caFile}"
${o.auth}
${o.reenroll === undefined ? '' : `reenroll_revoked = ${o.reenroll}`}
[certs.${name}]
common_name = "${name}.plant.local"
cert = "${base}/cert.pem"
key = "${base}/key.pem"
`,
  );
  return { cfg, cert: join(base, 'cert.pem'), key: join(base, 'key.pem'), crls: join(base, 'crls.pem'), status: join(base, 'status.json') };
}

const BASIC = 'username = "estuser"\npassword = "estpwd"';

/** openssl verify -crl_check_all with the client's CRL file: the output, `OK` when it verifies. */
async function verifyWithCrls(certFile: string, crlFile: string): Promise<{ code: number | null; out: string }> {
  const leaf = join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  await writeFile(leaf, await leafPem(certFile));
  const r = await run('openssl', ['verify', '-crl_check_all', '-CAfile', gw.caFile, '-CRLfile', crlFile, leaf]);
  return { code: r.code, out: r.stdout.toString() + r.stderr };
}

test('status: not revoked, then revoked with reason and date; reenroll_revoked = false stops renewal and says why; the CRL file rejects it in openssl verify -crl_check_all', async (t) => {
  const c = await clientConfig('stop-dev', { auth: BASIC, crlOut: true });
  const first = await estgw(['client', 'run', '--config', c.cfg, '--once']);
  t.is(first.code, 0, first.stderr);
  const ok = await verifyWithCrls(c.cert, c.crls);
  t.is(ok.code, 0, ok.out);
  t.regex(ok.out, /: OK/);

  const good = await estgw(['client', 'status', '--config', c.cfg]);
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout.toString(), /revocation +not revoked \(CRL #\d+, next update \S+/);

  const pem = await readFile(c.cert, 'utf8');
  const serial = serialOf(pem);
  await revoke(serial, 'keyCompromise');

  const st = await estgw(['client', 'status', '--config', c.cfg]);
  t.is(st.code, 0, st.stderr);
  t.regex(st.stdout.toString(), new RegExp(`revocation +REVOKED on \\d{4}-\\d\\d-\\d\\dT\\S+: keyCompromise \\(serial ${serial}, CN=stop-dev.plant.local; CRL root #\\d+`));
  const js = await estgw(['client', 'status', '--config', c.cfg, '--json']);
  const doc = JSON.parse(js.stdout.toString()) as { certs: Array<{ revocation: Record<string, unknown> }> };
  t.like(doc.certs[0]!.revocation, { state: 'revoked', serial, reason: 'keyCompromise', crl: 'root' });
  t.true(Date.now() - Date.parse(doc.certs[0]!.revocation.revokedAt as string) < 10 * 60_000);

  const again = await estgw(['client', 'run', '--config', c.cfg, '--once']);
  t.is(again.code, 1);
  t.regex(again.stderr, /estgw: stop-dev: the certificate \(serial [0-9a-f]+\) is revoked \(keyCompromise on \S+, CRL root #\d+\); reenroll_revoked is off/);
  t.is(await readFile(c.cert, 'utf8'), pem, 'the revoked certificate stays; nothing was enrolled');
  const status = await readStatus(c.status);
  t.regex(status.certs[0]!.stopped!, /reenroll_revoked is off/);
  t.is(status.certs[0]!.nextRenewal, undefined, 'no renewal scheduled');
  const printed = await estgw(['client', 'status', '--status-file', c.status]);
  t.regex(printed.stdout.toString(), /renewal +STOPPED: the certificate .* is revoked/);

  // the CRL file now lists it
  const bad = await verifyWithCrls(c.cert, c.crls);
  t.not(bad.code, 0);
  t.regex(bad.out, /certificate revoked/);
});

test('reenroll_revoked = true: a revoked certificate (superseded) is replaced at once through the bootstrap certificate, with a new key', async (t) => {
  const c = await clientConfig('swap-dev', { auth: `bootstrap_cert = "${boot.certFile}"\nbootstrap_key = "${boot.keyFile}"`, reenroll: true });
  t.is((await estgw(['client', 'run', '--config', c.cfg, '--once'])).code, 0);
  const before = await readPairFiles(c.cert, c.key);
  await revoke(serialOf(before.certPem), 'superseded');
  const r = await estgw(['client', 'run', '--config', c.cfg, '--once', '--verbose']);
  t.is(r.code, 0, r.stderr);
  const after = await readPairFiles(c.cert, c.key); // the pair matches: parsePair checks key against certificate
  t.not(serialOf(after.certPem), serialOf(before.certPem), r.stderr + (await readFile(c.status, 'utf8')));
  t.false(spkiDer(after.key).equals(spkiDer(before.key)), 'a new key');
  const line = gw.audit().filter((l) => l.subject === 'CN=swap-dev.plant.local').at(-1)!;
  t.like(line, { op: 'simpleenroll', identity: 'cert:device/boot-0077', status: 200 });
  const st = await estgw(['client', 'status', '--config', c.cfg]);
  t.regex(st.stdout.toString(), /revocation +not revoked/);
});

/** Always due: every run renews, by simplereenroll with the certificate. */
const spec = (name: string, o: SpecOverrides = {}): CertSpec => gatewaySpec(gw, dir, name, { threshold: '3650d', rotateKey: false, pop: 'never', ...o });

test("the server's 403 for a revoked certificate (no CRL check): replaced through Basic at once when allowed; otherwise one attempt and no retries", async (t) => {
  for (const reenrollRevoked of [true, false]) {
    const s = spec(`forbidden-${reenrollRevoked}`, { reenrollRevoked });
    // no [crl]: only the renewal's answer can tell
    const metrics = new ClientMetrics();
    const d = new ClientDaemon({ certs: [s], statusFile: join(dir, `forbidden-${reenrollRevoked}.json`), logLevel: 'silent' }, { metrics });
    t.true((await d.runOnce())[0]!.ok);
    const before = await readPairFiles(s.certFile, s.keyFile);
    await revoke(serialOf(before.certPem), 'cessationOfOperation');
    await d.init();
    const [r] = await d.runOnce();
    const lines = gw.audit().filter((l) => l.subject === `CN=${s.subject[0]![1]}`);
    // refused when the revoked certificate authenticates, before its CSR is read
    const refused = gw.audit().filter((l) => l.identity === `cert:device/${s.subject[0]![1]}`).at(-1)!;
    t.like(refused, { op: 'simplereenroll', status: 403 });
    t.regex(String(refused.reason), /revoked .*cessationOfOperation/);
    if (reenrollRevoked) {
      t.true(r!.ok, r!.error);
      t.like(lines.at(-1), { op: 'simpleenroll', identity: 'user:estuser', status: 200 });
      const after = await readPairFiles(s.certFile, s.keyFile);
      t.false(spkiDer(after.key).equals(spkiDer(before.key)), 'a new key although rotate_key is off');
    } else {
      t.false(r!.ok);
      t.regex(r!.error!, /is revoked \(the server refused its renewal: simplereenroll: server answered 403 Forbidden: .*revoked.*\); reenroll_revoked is off/);
      t.is(d.nextWake(), Infinity, 'nothing scheduled');
      const count = gw.audit().length;
      t.false((await d.runOnce())[0]!.ok);
      t.is(gw.audit().length, count, 'no doomed renewal retried');
      t.is(await readFile(s.certFile, 'utf8'), before.certPem);
    }
    t.regex(await metrics.registry.metrics(), new RegExp(`^estgw_client_renewal_stopped\\{cert="${s.name}"\\} ${reenrollRevoked ? 0 : 1}$`, 'm'));
  }
});

test('the daemon fetches CRLs again on its schedule, before nextUpdate, and keeps [crl] out fresh (injected clock)', async (t) => {
  const s = spec('sched', { threshold: '80%' });
  const out = join(dir, 'sched-crls.pem');
  const clock = new FakeClock(Date.now());
  const metrics = new ClientMetrics();
  const d = new ClientDaemon({ certs: [s], statusFile: join(dir, 'sched.json'), logLevel: 'silent', crl: { refreshMs: 24 * H, out } }, { clock, metrics });
  const settle = async () => {
    await d.idle();
    await new Promise((r) => setImmediate(r));
  };
  await d.start();
  await clock.advanceTo(clock.now(), settle);
  const crlNumber = async () => Number(/CRL Number:\s*\n?\s*(\d+)/.exec((await run('openssl', ['crl', '-in', out, '-noout', '-text'])).stdout.toString())![1]);
  const n1 = await crlNumber();
  // the CRL is valid for 2 h: the next fetch is due well before that, not after the 24 h refresh
  const next = d.nextWake()!;
  t.true(next <= clock.now() + 1.01 * H && next > clock.now(), `next wake in ${(next - clock.now()) / 60_000} min`);
  // another device is revoked in the meantime: the gateway signs a new CRL
  const victim = spec('victim', {});
  await new ClientDaemon({ certs: [victim], statusFile: join(dir, 'victim.json'), logLevel: 'silent' }).runOnce();
  gw.gateway.ledger!.revoke(serialOf(await readFile(victim.certFile, 'utf8')), 'privilegeWithdrawn', 'test');
  await clock.advanceTo(next, settle);
  t.true((await crlNumber()) > n1, 'the file holds the newer CRL');
  const text = (await run('openssl', ['crl', '-in', out, '-noout', '-text'])).stdout.toString();
  t.regex(text, new RegExp(`Serial Number: ${serialOf(await readFile(victim.certFile, 'utf8')).toUpperCase()}`));
  const st = await readStatus(join(dir, 'sched.json'));
  t.is(st.certs[0]!.revocation?.state, 'good');
  t.regex(await metrics.registry.metrics(), /^estgw_client_cert_revoked\{cert="sched"\} 0$/m);
  await d.stop();
});

/** A TLS server on port 0 (its own root) that serves `index` at /crl/ and `body` for any CRL, changeable. */
async function crlRelay(t: ExecutionContext, index: unknown, body: Buffer) {
  const fx = await tlsFixture('estgw-crl-relay-', 'CRL relay root');
  t.teardown(() => rm(fx.dir, { recursive: true, force: true }));
  const relay = { body, fx, url: '' };
  const server = await startTinyServer(fx.tls, (req) =>
    req.path === '/crl/'
      ? httpResponse('200 OK', { 'Content-Type': 'application/json' }, JSON.stringify(index))
      : httpResponse('200 OK', { 'Content-Type': 'application/pkix-crl' }, relay.body),
  );
  t.teardown(() => server.close());
  relay.url = server.url;
  return relay;
}

test('a gateway replaying an older, still current CRL cannot hide a revocation the daemon has seen', async (t) => {
  const s = spec('rollback', { threshold: '80%' });
  await new ClientDaemon({ certs: [s], statusFile: join(dir, 'rollback-enroll.json'), logLevel: 'silent' }).runOnce();
  const before = gw.gateway.ledger!.crl('root')!;
  gw.gateway.ledger!.revoke(serialOf(await readFile(s.certFile, 'utf8')), 'keyCompromise', 'test');
  const after = gw.gateway.ledger!.crl('root')!;
  const relay = await crlRelay(t, { crls: gw.gateway.ledger!.crlIndex() }, after);
  // the daemon asks the relay: its TLS root joins the anchors
  const d = new ClientDaemon(
    { certs: [{ ...s, url: relay.url, trustFiles: [gw.caFile, relay.fx.ca.file] }], statusFile: join(dir, 'rollback.json'), logLevel: 'silent', crl: { refreshMs: H } },
  );
  await d.runOnce();
  t.is(d.status().certs[0]!.revocation?.state, 'revoked');
  relay.body = before;
  t.is((await checkChain([fromPemAll(await readFile(s.certFile, 'utf8'), 'CERTIFICATE')[0]!, gw.gateway.pki.cas.get('root')!.certDer], { url: relay.url, trust: relay.fx.ca.pem, timeoutMs: 5000 }, new CrlRound(Date.now()))).state, 'good', 'the older CRL alone says not revoked');
  await d.runOnce();
  t.like(d.status().certs[0]!.revocation, { state: 'revoked', reason: 'keyCompromise' });
});

test('a forged, tampered or truncated CRL answers "unknown" with why, never "not revoked"', async (t) => {
  const s = spec('forged', {});
  await new ClientDaemon({ certs: [s], statusFile: join(dir, 'forged.json'), logLevel: 'silent' }).runOnce();
  const real = gw.gateway.ledger!.crl('root')!;
  const index = JSON.parse(JSON.stringify({ crls: gw.gateway.ledger!.crlIndex() }));
  const otherGw = await startTestGateway();
  t.teardown(() => otherGw.close());
  const foreign = otherGw.gateway.ledger!.crl('root')!;
  const flipped = Buffer.from(real);
  flipped[flipped.length - 5]! ^= 0x01;
  const bodies: Record<string, Buffer> = { truncated: real.subarray(0, real.length - 10), tampered: flipped, foreign, trailing: Buffer.concat([real, Buffer.from([0])]) };
  const relay = await crlRelay(t, index, real);
  const chain = [fromPemAll(await readFile(s.certFile, 'utf8'), 'CERTIFICATE')[0]!, gw.gateway.pki.cas.get('root')!.certDer];
  const target = { url: relay.url, trust: relay.fx.ca.pem, timeoutMs: 5000 };
  t.is((await checkChain(chain, target, new CrlRound(Date.now()))).state, 'good', 'the genuine CRL, relayed by anyone, verifies');
  const why: Record<string, RegExp> = {
    truncated: /truncated DER/,
    tampered: /signature does not verify/,
    foreign: /signature does not verify|signed by another key/,
    trailing: /trailing bytes/,
  };
  for (const [name, b] of Object.entries(bodies)) {
    relay.body = b;
    const r = await checkChain(chain, target, new CrlRound(Date.now()));
    t.is(r.state, 'unknown', name);
    if (r.state === 'unknown') t.regex(r.why, why[name]!, name);
  }
  // an index that is not what the gateway serves
  relay.body = real;
  index.crls[0].keyId = 'zz';
  const r = await checkChain(chain, target, new CrlRound(Date.now()));
  t.is(r.state, 'unknown');
  if (r.state === 'unknown') t.regex(r.why, /CRL index has an entry without/);
});
