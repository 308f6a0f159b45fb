// Issue 12 with two replicas of one layer sharing Redis: the device polls both,
// an operator's `estgw requests` in another process decides, and the next poll
// at either replica gets the certificate once, or the 403 with the reason.
import test from 'ava';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_REDIS_URL, deleteKeys, freePort, uniquePrefix } from '../cache/helpers.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { heldId, listed, requestsCli } from './helpers.js';

const prefix = uniquePrefix();
let dataDir: string;
let a: TestGateway;
let b: TestGateway;
let cli: ReturnType<typeof requestsCli>;

const layer = (dir: string) => ({
  dataDir: dir,
  redis: { url: SHARED_REDIS_URL, key_prefix: prefix },
  labels: { default: { approval: 'manual' } },
  extra: { approval: { retry_after: 7, max_pending_per_source: 50 } },
});

test.before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'estgw-approval-'));
  // two replicas: one data directory (the same CA), one Redis prefix
  a = await startTestGateway(layer(dataDir));
  b = await startTestGateway(layer(dataDir));
  cli = requestsCli({ dataDir, redis: { url: SHARED_REDIS_URL, prefix } });
});
test.after.always(async () => {
  await a?.close();
  await b?.close();
  const redis = new Redis(SHARED_REDIS_URL);
  await deleteKeys(redis, prefix);
  redis.disconnect();
  await rm(dataDir, { recursive: true, force: true });
});

const issuedFor = (cn: string) => [...a.gateway.ledger!.store.list({ subject: `CN=${cn}` })].length;

test('held at both replicas, approved by the CLI in another process, issued once at the other replica', async (t) => {
  const csr = await makeCsr('plc-approve');
  const id = heldId(t, await enroll(a, csr.b64), 7);
  // the other replica finds the same entry: the same key and names, a CSR signed anew
  t.is(heldId(t, await enroll(b, (await makeCsr('plc-approve', { key: csr.key })).b64), 7), id);
  t.is(issuedFor('plc-approve'), 0);
  t.like(a.audit().find((l) => l.subject === 'CN=plc-approve'), { op: 'simpleenroll', status: 202, outcome: 'pending', identity: 'user:estuser' });

  const [row] = (await listed(t, cli)).filter((r) => r.id === id);
  t.like(row, { state: 'pending', label: 'default', subject: 'CN=plc-approve', identity: 'user:estuser', source: '127.0.0.1', polls: 2 });

  const shown = await cli('show', id.slice(0, 10));
  t.is(shown.code, 0, shown.stderr);
  const text = shown.stdout.toString();
  t.regex(text, new RegExp(`^id: +${id}$`, 'm'));
  t.regex(text, /^CSR SHA-256: +[0-9a-f]{64}$/m);
  t.regex(text, /^key: +P-?256.*SHA-256 [0-9a-f]{64}$/m);
  t.regex(text, /^source: +127\.0\.0\.1$/m);
  t.regex(text, /-----BEGIN CERTIFICATE REQUEST-----/);

  const approved = await cli('approve', id, '--by', 'operator-anna');
  t.is(approved.code, 0, approved.stderr);
  t.regex(approved.stderr, /approved .* by operator-anna/);
  const cert = issuedCert(t, await enroll(b, (await makeCsr('plc-approve', { key: csr.key })).b64));
  t.is(cert.subject, 'CN=plc-approve');
  t.is(issuedFor('plc-approve'), 1);
  t.true(b.logs.some((l) => l.msg === 'approved request issued' && l.id === id && l.approvedBy === 'operator-anna'));

  // consumed: a further request is a new one, held again, and issues nothing
  const again = heldId(t, await enroll(a, csr.b64), 7);
  t.not(again, id);
  t.is(issuedFor('plc-approve'), 1);
  // a decided request cannot be decided twice
  const twice = await cli('approve', id);
  t.is(twice.code, 1);
  t.regex(twice.stderr, /cannot be approved: it is issued/);
});

test('two replicas polling an approved request at the same moment issue one certificate', async (t) => {
  const csr = await makeCsr('plc-race');
  const id = heldId(t, await enroll(a, csr.b64), 7);
  t.is((await cli('approve', id)).code, 0);
  const answers = await Promise.all([enroll(a, csr.b64), enroll(b, csr.b64), enroll(a, csr.b64), enroll(b, csr.b64)]);
  t.is(answers.filter((r) => r.status === 200).length, 1, answers.map((r) => `${r.status} ${r.body.toString()}`).join('\n'));
  t.true(answers.every((r) => r.status === 200 || r.status === 202));
  t.is(issuedFor('plc-race'), 1);
});

test('rejected: the next poll, at either replica, gets 403 with the reason; the decision is audited', async (t) => {
  const csr = await makeCsr('plc-reject');
  const id = heldId(t, await enroll(b, csr.b64), 7);
  const bad = await cli('reject', id, '--reason', 'not\u0007a reason');
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /--reason takes one line/);
  const missing = await cli('reject', id);
  t.is(missing.code, 2);
  const rejected = await cli('reject', id, '--reason', 'unknown device on line 3', '--by', 'operator-ben');
  t.is(rejected.code, 0, rejected.stderr);
  t.regex(rejected.stdout.toString(), /"by":"operator-ben".*"msg":"approval request rejected"/);
  for (const gw of [a, b]) assertReason(t, await enroll(gw, csr.b64), 403, /rejected by an operator: unknown device on line 3/);
  t.is(issuedFor('plc-reject'), 0);
  const [row] = (await listed(t, cli, '--all')).filter((r) => r.id === id);
  t.like(row, { state: 'rejected', reason: 'unknown device on line 3', decidedBy: 'operator-ben' });
});

test('bad ids and options: a clear message and a nonzero exit', async (t) => {
  for (const [args, re] of [
    [['approve', 'zz'], /not a request id/],
    [['approve', '0123456789abcdef0123456789abcdef'], /no request 0123456789abcdef/],
    [['approve', 'x', '--cert-days=-3'], /--cert-days takes a positive whole number/],
    [['list', '--reason', 'x'], /takes no --reason/],
    [['show'], /takes one ID/],
  ] as const) {
    const r = await cli(...args);
    t.not(r.code, 0);
    t.regex(r.stderr, re);
    t.notRegex(r.stderr, /\n\s+at /); // no stack trace
  }
  const help = await cli('approve', '--help');
  t.is(help.code, 0);
  t.regex(help.stdout.toString(), /usage: estgw requests approve ID \[--cert-days N\]/);
});

test('--cert-days: bounded by the label, and the certificate lives that long', async (t) => {
  const csr = await makeCsr('plc-short');
  const id = heldId(t, await enroll(a, csr.b64), 7);
  const tooLong = await cli('approve', id, '--cert-days', '31');
  t.is(tooLong.code, 1);
  t.regex(tooLong.stderr, /exceeds label "default"'s validity \(30 day/);
  t.is((await cli('approve', id, '--cert-days', '2')).code, 0);
  const cert = issuedCert(t, await enroll(b, csr.b64));
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
  t.true(days > 1 && days <= 2.01, String(days));
});

test('metrics: pending requests by label and the age of the oldest', async (t) => {
  await enroll(a, (await makeCsr('plc-metrics')).b64);
  const text = await a.gateway.metrics.registry.metrics();
  const m = /^estgw_approval_pending\{label="default"\} (\d+)$/m.exec(text);
  t.truthy(m, text.split('\n').filter((l) => l.includes('approval')).join('\n'));
  t.true(Number(m![1]) >= 1);
  t.regex(text, /^estgw_approval_oldest_pending_seconds\{label="default"\} \d+$/m);
});

test('Redis unreachable: requests says where it looked, never the password in the URL, and exits 1', async (t) => {
  const port = await freePort();
  const down = requestsCli({ dataDir, redis: { url: `redis://:hunter2@127.0.0.1:${port}`, prefix } });
  const r = await down('list');
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`^estgw: cannot reach the approval queue in Redis at 127\\.0\\.0\\.1:${port} \\(key prefix "${prefix}"\\): .+\\n$`));
  t.false(r.stderr.includes('hunter2'));
});

test('the same new request at both replicas at the same moment makes one entry', async (t) => {
  const csr = await makeCsr('plc-twice');
  const [x, y, z] = await Promise.all([enroll(a, csr.b64), enroll(b, csr.b64), enroll(b, csr.b64)]);
  const ids = new Set([heldId(t, x, 7), heldId(t, y, 7), heldId(t, z, 7)]);
  t.is(ids.size, 1);
  const rows = (await listed(t, cli)).filter((r) => r.subject === 'CN=plc-twice');
  t.is(rows.length, 1);
  t.is(rows[0]!.polls, 3);
});
