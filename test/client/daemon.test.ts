// The renewal loop driven by an injected clock and an in-memory EST server: no
// sleeping, no network. Thresholds in % and durations, retry, jitter, expiry,
// the credential ladder with its fallback to the bootstrap certificate.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientDaemon, MAX_SLEEP_MS } from '../../src/client/daemon.js';
import { parseSpan } from '../../src/util/durations.js';
import { isValidAt, readPairFiles } from '../../src/client/pair.js';
import { planRungs } from '../../src/client/renew.js';
import type { CertSpec, ClientConfig } from '../../src/client/spec.js';
import { formatStatus, readStatus } from '../../src/client/status.js';
import { parseCsr } from '../../src/est/csr.js';
import { buildName } from '../../src/est/name.js';
import { spkiDer } from '../../src/pki/keys.js';
import { FakeClock, FakeEst } from './support/fakes.js';
import { type TestCa, issueForCsr, makeCa, makeCsrDer, makePair } from './support/pki.js';

const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;

interface Ctx {
  dir: string;
  ca: TestCa;
  clock: FakeClock;
  est: FakeEst;
}

test.beforeEach(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'estgw-daemon-'));
  const ca = await makeCa(dir, 'daemon test root');
  const clock = new FakeClock(Date.now());
  t.context = { dir, ca, clock, est: new FakeEst(ca, clock) } satisfies Ctx;
});
test.afterEach.always(async (t) => rm((t.context as Ctx).dir, { recursive: true, force: true }));

function spec(c: Ctx, o: Partial<CertSpec> & { threshold?: string; retry?: string; jitter?: string; rotateKey?: boolean } = {}): CertSpec {
  const { threshold, retry, jitter, rotateKey, ...rest } = o;
  const name = rest.name ?? 'device';
  return {
    name,
    url: 'https://est.test/.well-known/est',
    trustFiles: [c.ca.file],
    subject: [['CN', `${name}-1`]],
    subjectAltNames: [],
    ca: false,
    keyType: 'p256',
    certFile: join(c.dir, `${name}.cert.pem`),
    keyFile: join(c.dir, `${name}.key.pem`),
    policy: { threshold: parseSpan(threshold ?? '80%'), retry: parseSpan(retry ?? '4%'), jitter: parseSpan(jitter ?? '1%'), rotateKey: rotateKey ?? true },
    method: 'simplereenroll',
    auth: { username: 'estuser', password: 'estpwd' },
    pop: 'never',
    timeoutMs: 1000,
    ...rest,
  };
}

const config = (c: Ctx, certs: CertSpec[]): ClientConfig => ({ certs, statusFile: join(c.dir, 'status.json'), logLevel: 'silent' });

function daemon(c: Ctx, certs: CertSpec[], rng: () => number = () => 0, extra: Partial<ConstructorParameters<typeof ClientDaemon>[1]> = {}) {
  return new ClientDaemon(config(c, certs), { clock: c.clock, rng, makeClient: c.est.factory, ...extra });
}

const settle = (d: ClientDaemon) => async () => {
  await d.idle();
  await new Promise((r) => setImmediate(r));
};

async function leaf(s: CertSpec) {
  const p = await readPairFiles(s.certFile, s.keyFile);
  return { ...p, x: new X509Certificate(p.certPem) };
}

test('enrolls what is missing at once, then renews at 80% of the lifetime and not before', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c, { threshold: '80%', jitter: '1%' });
  const d = daemon(c, [s]);
  await d.start();
  await c.clock.advanceTo(c.clock.now(), settle(d));
  t.is(c.est.calls.length, 1);
  t.is(c.est.calls[0]!.op, 'simpleenroll');
  const first = await leaf(s);
  const nb = first.leaf.notBefore.getTime();
  const life = first.leaf.notAfter.getTime() - nb;
  const due = nb + 0.8 * life;
  await c.clock.advanceTo(due - MIN, settle(d));
  t.is(c.est.calls.length, 1, 'not renewed before the threshold');
  await c.clock.advanceTo(due + MAX_SLEEP_MS, settle(d));
  t.is(c.est.calls.length, 2);
  t.is(c.est.calls[1]!.op, 'simplereenroll');
  t.is(c.est.calls[1]!.tlsCn, 'device-1', 'reenroll presents the certificate being renewed');
  const at = c.est.calls[1]!.at;
  t.true(at >= due && at <= due + MAX_SLEEP_MS, `renewed ${(at - due) / MIN} min after the threshold`);
  t.not((await leaf(s)).x.serialNumber, first.x.serialNumber);
  await d.stop();
});

test('threshold as a duration ("2d", "60m"): renews that long before notAfter', async (t) => {
  const c = t.context as Ctx;
  for (const [threshold, before] of [['2d', 2 * D], ['60m', H]] as const) {
    const s = spec(c, { name: `dur${before}`, threshold, jitter: '1%' });
    const d = daemon(c, [s]);
    await d.runOnce();
    const { leaf: l } = await leaf(s);
    const calls = c.est.calls.length;
    await d.start();
    const due = l.notAfter.getTime() - before;
    await c.clock.advanceTo(due - 1000, settle(d));
    t.is(c.est.calls.length, calls, `${threshold}: not yet`);
    await c.clock.advanceTo(due + MAX_SLEEP_MS, settle(d));
    t.is(c.est.calls.length, calls + 1, `${threshold}: renewed`);
    await d.stop();
  }
});

test('jitter moves the renewal earlier by the drawn share of the jitter span', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c, { threshold: '80%', jitter: '10%' });
  const d = daemon(c, [s], () => 0.5);
  await d.runOnce();
  const { leaf: l } = await leaf(s);
  const nb = l.notBefore.getTime();
  const life = l.notAfter.getTime() - nb;
  await d.init();
  t.is(d.nextWake(), Math.round(nb + 0.8 * life - 0.05 * life));
});

test('failures retry at the policy interval and never touch the files', async (t) => {
  const c = t.context as Ctx;
  c.est.days = 1;
  const s = spec(c, { threshold: '50%', retry: '4%' });
  const d = daemon(c, [s]);
  await d.runOnce();
  const before = await readFile(s.certFile, 'utf8');
  const { leaf: l } = await leaf(s);
  const life = l.notAfter.getTime() - l.notBefore.getTime();
  c.est.down = true;
  await d.start();
  const due = d.nextWake()!;
  await c.clock.advanceTo(due, settle(d));
  const n = c.est.calls.length;
  t.is(d.nextWake(), due + Math.round(0.04 * life), 'next attempt one retry interval later');
  await c.clock.advanceTo(due + 3 * 0.04 * life + 1000, settle(d));
  t.is(c.est.calls.length, n + 3, 'one attempt per retry interval');
  t.is(await readFile(s.certFile, 'utf8'), before);
  const st = await readStatus(join(c.dir, 'status.json'));
  t.regex(st.certs[0]!.lastError!, /cannot reach est\.test: ECONNREFUSED/);
  t.is(st.certs[0]!.failures, 4);
  await d.stop();
});

test('expired and the server down: keeps running and keeps the files; once back, renews through the bootstrap certificate', async (t) => {
  const c = t.context as Ctx;
  c.est.days = 1;
  const boot = await makePair(c.ca, 'bootstrap-7', c.dir, 'bootstrap', { days: 3650 });
  const s = spec(c, { auth: { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile }, retry: '30m' });
  const d = daemon(c, [s]);
  await d.runOnce();
  t.is(c.est.calls[0]!.tlsCn, 'bootstrap-7', 'first enrollment with the bootstrap certificate');
  const old = await readFile(s.certFile, 'utf8');
  const { leaf: l } = await leaf(s);
  c.est.down = true;
  await d.start();
  await c.clock.advanceTo(l.notAfter.getTime() + 6 * H, settle(d));
  t.is(await readFile(s.certFile, 'utf8'), old, 'the expired pair is still there');
  t.true(c.clock.pending() > 0, 'still scheduled');
  const tried = c.est.calls.length;
  t.true(tried > 10);
  c.est.down = false;
  await c.clock.advanceTo(c.clock.now() + H, settle(d));
  const last = c.est.calls.at(-1)!;
  t.is(last.op, 'simpleenroll', 'an expired certificate cannot be reenrolled');
  t.is(last.tlsCn, 'bootstrap-7');
  const renewed = await leaf(s);
  t.true(isValidAt(renewed, c.clock.now()));
  t.is(renewed.x.subject, 'CN=device-1');
  await d.stop();
});

test('the EST identity certificate is presented for the others; once it has expired, the bootstrap certificate takes over', async (t) => {
  const c = t.context as Ctx;
  c.est.days = 2;
  const boot = await makePair(c.ca, 'factory-boot', c.dir, 'boot', { days: 3650 });
  const bootAuth = { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile };
  const id = spec(c, { name: 'est-id', auth: bootAuth, method: 'simpleenroll' });
  const dev = spec(c, { name: 'device', auth: { ...bootAuth, identity: 'est-id' }, method: 'simpleenroll' });
  const d = daemon(c, [dev, id]);
  await d.runOnce();
  t.deepEqual(c.est.calls.map((x) => [x.csr.subject[0]![0]!.value, x.tlsCn]), [['est-id-1', 'factory-boot'], ['device-1', 'est-id-1']]);
  // both expire while the server is away; the identity is renewed through the bootstrap credential first
  c.est.down = true;
  c.clock.t += 3 * D;
  await d.runOnce();
  c.est.down = false;
  c.est.calls = [];
  c.clock.t += 2 * H;
  await d.init();
  await d.runOnce();
  t.deepEqual(c.est.calls.map((x) => [x.csr.subject[0]![0]!.value, x.op, x.tlsCn]), [['est-id-1', 'simpleenroll', 'factory-boot'], ['device-1', 'simpleenroll', 'est-id-1']]);
});

test('the ladder: expired identity is skipped, refusal moves to the next credential within one attempt', async (t) => {
  const c = t.context as Ctx;
  const boot = await makePair(c.ca, 'boot', c.dir, 'boot', { days: 3650 });
  const expiredId = await makePair(c.ca, 'est-id-1', c.dir, 'est-id', { days: 1, now: Date.now() - 3 * D });
  const bootPair = await readPairFiles(boot.certFile, boot.keyFile);
  const idPair = await readPairFiles(expiredId.certFile, expiredId.keyFile);
  const s = spec(c, { auth: { bootstrapCert: boot.certFile, bootstrapKey: boot.keyFile, identity: 'est-id' } });
  t.deepEqual(planRungs(s, { now: Date.now(), identity: idPair, bootstrap: bootPair }).map((r) => r.credential), ['bootstrap']);

  // a valid device certificate whose reenroll the server refuses: bootstrap simpleenroll in the same attempt
  const d = daemon(c, [s], () => 0);
  await d.runOnce();
  c.est.refuse.add('simplereenroll:device-1');
  c.clock.t += 9 * D;
  await d.init();
  const r = await d.runOnce();
  t.true(r[0]!.ok);
  t.deepEqual(c.est.calls.slice(-2).map((x) => [x.op, x.tlsCn]), [['simplereenroll', 'device-1'], ['simpleenroll', 'boot']]);
});

test('a 403 about another certificate being revoked (the layer\'s RA, upstream) is a failure to retry, never "this certificate is revoked"; a 403 naming this one is', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c, { threshold: '50%', retry: '4%' });
  const d = daemon(c, [s]);
  await d.runOnce();
  // what a bottom layer passes down while its own RA certificate is revoked at the middle
  c.est.refuseWith.set('simplereenroll:device-1', 'the RA certificate (serial 0a1b2c3d) was revoked on 2026-11-30T12:00:00.000Z: privilegeWithdrawn');
  await d.start();
  await c.clock.advanceTo(d.nextWake()!, settle(d));
  const n = c.est.calls.length;
  const again = d.nextWake();
  if (again === undefined || !Number.isFinite(again)) {
    await d.stop();
    return t.fail('renewal stopped: the RA\'s revocation was taken for this certificate\'s');
  }
  await c.clock.advanceTo(again, settle(d));
  t.true(c.est.calls.length > n, 'and retried');
  t.falsy((await readStatus(join(c.dir, 'status.json'))).certs[0]!.stopped);
  // the same server naming this certificate (the one on disk now): renewal stops (reenroll_revoked is off)
  const serial = (await leaf(s)).x.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
  c.est.refuseWith.set('simplereenroll:device-1', `the certificate being renewed (serial ${serial}) was revoked on 2026-11-30T12:00:00.000Z: keyCompromise`);
  await c.clock.advanceTo(d.nextWake()!, settle(d));
  t.truthy((await readStatus(join(c.dir, 'status.json'))).certs[0]!.stopped);
  await d.stop();
});

test('rotate_key = false keeps the key across renewals; true makes a new one', async (t) => {
  const c = t.context as Ctx;
  for (const rotateKey of [false, true]) {
    const s = spec(c, { name: `rot-${rotateKey}`, rotateKey, threshold: '3650d' });
    const d = daemon(c, [s]);
    await d.runOnce();
    const k1 = spkiDer((await leaf(s)).key);
    c.clock.t += MIN;
    await d.init();
    await d.runOnce();
    const k2 = spkiDer((await leaf(s)).key);
    t.is(k1.equals(k2), !rotateKey, `rotate_key = ${rotateKey}`);
    t.is(c.est.calls.at(-1)!.op, 'simplereenroll');
  }
});

test('202 pending: retried after the server\'s Retry-After with the same key', async (t) => {
  const c = t.context as Ctx;
  c.est.pending = 1;
  const s = spec(c);
  const d = daemon(c, [s]);
  await d.start();
  await c.clock.advanceTo(c.clock.now(), settle(d));
  t.is(c.est.calls.length, 1);
  const asked = c.clock.now();
  t.is(d.nextWake(), asked + 300_000);
  await c.clock.advanceTo(asked + 299_000, settle(d));
  t.is(c.est.calls.length, 1);
  await c.clock.advanceTo(asked + 300_000, settle(d));
  t.is(c.est.calls.length, 2);
  t.true(c.est.calls[0]!.csr.spki.equals(c.est.calls[1]!.csr.spki), 'the held request is resent with its key');
  t.true(spkiDer((await leaf(s)).key).equals(c.est.calls[1]!.csr.spki));
  await d.stop();
});

test('202 pending survives a restart: the new process resends the held request with its key (kept 0600 until issued)', async (t) => {
  const c = t.context as Ctx;
  c.est.pending = 1;
  const s = spec(c);
  const first = daemon(c, [s]);
  await first.start();
  await c.clock.advanceTo(c.clock.now(), settle(first));
  t.is(c.est.calls.length, 1);
  await first.stop();
  const held = join(c.dir, '.device.cert.pem.d', 'pending-key.pem');
  t.is((await stat(held)).mode & 0o777, 0o600);

  const since = (await readStatus(join(c.dir, 'status.json'))).certs[0]!.pendingSince;
  t.truthy(since);
  c.clock.t += 60_000;

  const second = daemon(c, [s]); // a new process: nothing in memory
  await second.start();
  t.is((await readStatus(join(c.dir, 'status.json'))).certs[0]!.pendingSince, since, 'still waiting since the first request, not since the restart');
  await c.clock.advanceTo(c.clock.now() + 300_000, settle(second));
  t.is(c.est.calls.length, 2);
  t.true(c.est.calls[0]!.csr.spki.equals(c.est.calls[1]!.csr.spki), 'the same key, so the approval holds');
  t.true(spkiDer((await leaf(s)).key).equals(c.est.calls[0]!.csr.spki));
  await t.throwsAsync(stat(held), { code: 'ENOENT' }, 'gone once issued');
  await second.stop();
});

test('a certificate that fails verification never replaces the pair', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c);
  const d = daemon(c, [s]);
  await d.runOnce();
  const before = await readFile(s.certFile, 'utf8');
  const stranger = await makeCa(c.dir, 'stranger root');
  const other = await makeCsrDer('someone-else');
  const renamed = (csrDer: Buffer) => {
    const csr = parseCsr(csrDer);
    return c.ca.signer.issue({ subjectDer: buildName([['CN', 'evil']]), spki: csr.spki, key: csr.key, validityDays: 10, extKeyUsage: [] }, new Date(c.clock.now())).der;
  };
  const cases: Array<[string, (csr: Buffer) => Buffer, RegExp]> = [
    ['another CA', (csr) => issueForCsr(stranger, csr, { now: c.clock.now() }), /does not chain to the trust anchor/],
    ["someone else's key", () => issueForCsr(c.ca, other.der, { now: c.clock.now() }), /does not carry the new public key/],
    ['another subject', renamed, /subject is "CN=evil", requested "CN=device-1"/],
    ['already expired', (csr) => issueForCsr(c.ca, csr, { days: 1, now: c.clock.now() - 2 * D }), /expired on/],
  ];
  for (const [what, tamper, msg] of cases) {
    c.est.tamper = tamper;
    c.clock.t += 9 * D;
    await d.init();
    const r = await d.runOnce();
    t.false(r[0]!.ok, what);
    t.regex(r[0]!.error!, msg, what);
    t.is(await readFile(s.certFile, 'utf8'), before, what);
    c.clock.t -= 9 * D;
  }
});

test('post-renew command runs after each renewal with the file paths; its failure is reported, the renewal stands', async (t) => {
  const c = t.context as Ctx;
  const runs: Array<[string, Record<string, string>]> = [];
  let fail = false;
  const s = spec(c, { postRenew: 'systemctl reload mosquitto' });
  const d = daemon(c, [s], () => 0, {
    runCommand: async (cmd, env) => {
      runs.push([cmd, env]);
      if (fail) throw new Error('exited with 1: unit not found');
    },
  });
  await d.runOnce();
  t.deepEqual(runs, [['systemctl reload mosquitto', { ESTGW_CERT_NAME: 'device', ESTGW_CERT_FILE: s.certFile, ESTGW_KEY_FILE: s.keyFile }]]);
  fail = true;
  c.clock.t += 9 * D;
  await d.init();
  const r = await d.runOnce();
  t.true(r[0]!.ok);
  t.is(d.status().certs[0]!.lastError, 'post-renew command failed: exited with 1: unit not found');
});

test('status shows subject, notAfter, next renewal, last attempt and last error', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c);
  const d = daemon(c, [s]);
  await d.runOnce();
  c.est.down = true;
  c.clock.t += 9 * D;
  await d.init();
  await d.runOnce();
  const doc = await readStatus(join(c.dir, 'status.json'));
  const st = doc.certs[0]!;
  t.is(st.subject, 'CN=device-1');
  t.truthy(st.notAfter && st.nextRenewal && st.lastAttempt && st.lastSuccess);
  t.regex(st.lastError!, /ECONNREFUSED/);
  const text = formatStatus(doc, c.clock.now());
  t.regex(text, /device  .*device\.cert\.pem/);
  t.regex(text, /subject +CN=device-1/);
  t.regex(text, /last attempt .* failed/);
  t.regex(text, /last error +simpleenroll|simplereenroll: cannot reach/);
});

test('reload (SIGHUP) adds new certificates and keeps what it knew about the others', async (t) => {
  const c = t.context as Ctx;
  const a = spec(c, { name: 'a' });
  const d = daemon(c, [a]);
  await d.start();
  await c.clock.advanceTo(c.clock.now(), settle(d));
  t.is(c.est.calls.length, 1);
  const b = spec(c, { name: 'b' });
  await d.reload(config(c, [a, b]));
  await c.clock.advanceTo(c.clock.now(), settle(d));
  t.deepEqual(c.est.calls.map((x) => x.csr.subject[0]![0]!.value), ['a-1', 'b-1']);
  t.deepEqual(d.status().certs.map((x) => x.name), ['a', 'b']);
  await d.stop();
  t.is(c.clock.pending(), 0, 'stop clears the timer');
});

test('method = "simpleenroll" (aziot style) renews by simpleenroll presenting the current certificate', async (t) => {
  const c = t.context as Ctx;
  const s = spec(c, { method: 'simpleenroll', threshold: '3650d' });
  const d = daemon(c, [s]);
  t.true((await d.runOnce())[0]!.ok);
  c.clock.t += MIN;
  await d.init();
  t.true((await d.runOnce())[0]!.ok);
  t.deepEqual(c.est.calls.map((x) => [x.op, x.tlsCn ?? null, x.basic]), [['simpleenroll', null, true], ['simpleenroll', 'device-1', true]]);
});
