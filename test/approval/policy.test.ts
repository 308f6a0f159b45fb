// Issue 12 on one gateway with the embedded store (DATA_DIR/approvals, no
// Redis): what is held and what is not (exemptions, grants, failed
// validation), the caps a device with the bootstrap password meets, expiry,
// the hook, and a restart with requests waiting.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { buildName } from '../../src/est/name.js';
import { eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { DEV_AUTH, assertReason, enroll, estUrl, issuedCert, serverKeygenAnswer } from '../helpers/est.js';
import { type TestGatewayOptions, startTestGateway } from '../helpers/gateway.js';
import { basic, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { heldId, listed, requestsCli } from './helpers.js';
import { LmdbApprovalStore, approvalsPath } from '../../src/approval/lmdb-store.js';

async function gateway(t: ExecutionContext, o: TestGatewayOptions) {
  const gw = await startTestGateway(o);
  t.teardown(() => gw.close());
  return { gw, cli: requestsCli({ dataDir: gw.dataDir }) };
}

const USERS = { estuser: 'estpwd', 'line-7': 'pw7', 'ra-1': 'pwra', boot: 'pwboot' };

test('exempt: identity pattern, registration authority, renewal by a valid certificate, an auto grant; the rest is held', async (t) => {
  const { gw } = await gateway(t, {
    users: USERS,
    labels: {
      default: {
        approval: 'manual',
        approval_exempt_identities: ['user:line-*'],
        approval_exempt_ras: true,
        registration_authorities: ['user:ra-1'],
        grants: [{ identity: 'user:boot', approval: 'auto' }, { identity: '*' }],
      },
    },
    extra: { approval: { retry_after: 5 } },
  });
  const line = await makeCsr('plc-line');
  const cert = issuedCert(t, await enroll(gw, line.b64, { auth: basic('line-7', 'pw7') }));
  issuedCert(t, await enroll(gw, (await makeCsr('plc-via-ra')).b64, { auth: basic('ra-1', 'pwra') }));
  issuedCert(t, await enroll(gw, (await makeCsr('plc-boot')).b64, { auth: basic('boot', 'pwboot') }));
  // renewal with the certificate in TLS: not held
  const renewed = await enroll(gw, (await makeCsr('plc-line', { key: line.key })).b64, { op: 'simplereenroll', auth: null, cert: cert.toString(), key: line.keyPem });
  t.is(issuedCert(t, renewed).subject, 'CN=plc-line');
  // the shared bootstrap user is held
  heldId(t, await enroll(gw, (await makeCsr('plc-new')).b64, { auth: DEV_AUTH }), 5);
  // the four issued above, and not the held one (the layer's own TLS certificate is on record too, as op tls-server)
  t.deepEqual([...gw.gateway.ledger!.store.list()].filter((r) => r.op !== 'tls-server').map((r) => r.subject).sort(), ['CN=plc-boot', 'CN=plc-line', 'CN=plc-line', 'CN=plc-via-ra']);
});

test('a renewal is held when approval_exempt_renewals = false', async (t) => {
  const { gw } = await gateway(t, {
    users: USERS,
    labels: { default: { approval: 'manual', approval_exempt_renewals: false, approval_exempt_identities: ['user:line-*'] } },
  });
  const line = await makeCsr('plc-renew');
  const cert = issuedCert(t, await enroll(gw, line.b64, { auth: basic('line-7', 'pw7') }));
  heldId(t, await enroll(gw, (await makeCsr('plc-renew', { key: line.key })).b64, { op: 'simplereenroll', auth: null, cert: cert.toString(), key: line.keyPem }), 60);
});

test('a request that fails validation is never queued: PoP, policy, signature, a control character', async (t) => {
  const { gw, cli } = await gateway(t, {
    labels: {
      default: { approval: 'manual' },
      pop: { approval: 'manual', require_pop: true },
      strict: { approval: 'manual', grants: [{ identity: '*', common_names: ['plc-*'] }] },
    },
  });
  // queue something so that the store exists and the CLI reads it
  heldId(t, await enroll(gw, (await makeCsr('plc-held')).b64), 60);
  assertReason(t, await enroll(gw, (await makeCsr('plc-nopop')).b64, { label: 'pop' }), 400, /requires proof-of-possession/);
  const key = (await makeCsr('x')).key;
  const wrongPop = await httpsRequest(estUrl(gw, 'simpleenroll', 'pop'), {
    ca: gw.caPem, maxVersion: 'TLSv1.2', headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH },
    beforeBody: () => encodeEstBase64(buildCsr({ subject: buildName([['CN', 'plc-badpop']]), privateKey: key, challengePassword: 'AAAAAAAAAAAAAAAA' })),
  });
  assertReason(t, wrongPop, 400, /does not match this connection's tls-unique/);
  assertReason(t, await enroll(gw, (await makeCsr('hmi-1')).b64, { label: 'strict' }), 403, /CN "hmi-1" is not allowed/);
  const signed = await makeCsr('plc-forged');
  const forged = Buffer.from(signed.der);
  forged[forged.length - 2]! ^= 0x01;
  assertReason(t, await enroll(gw, encodeEstBase64(forged)), 400, /signature does not verify/);
  assertReason(t, await enroll(gw, (await makeCsr('plc-\u001b[31m')).b64), 400, /control character/);
  const rows = await listed(t, cli, '--all');
  t.deepEqual(rows.map((r) => r.subject), ['CN=plc-held']);
});

test('PoP linking: each poll signs its CSR anew for its own connection and still finds the held request', async (t) => {
  const { gw, cli } = await gateway(t, { labels: { default: { approval: 'manual', require_pop: true } } });
  const key = (await makeCsr('x')).key;
  const poll = () => httpsRequest(estUrl(gw, 'simpleenroll'), {
    ca: gw.caPem, maxVersion: 'TLSv1.2', headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH },
    beforeBody: (s: TLSSocket) => encodeEstBase64(buildCsr({ subject: buildName([['CN', 'plc-pop']]), privateKey: key, challengePassword: s.getFinished()!.toString('base64') })),
  });
  const id = heldId(t, await poll(), 60);
  t.is(heldId(t, await poll(), 60), id);
  t.is((await cli('approve', id)).code, 0);
  t.is(issuedCert(t, await poll()).subject, 'CN=plc-pop');
});

test('attacker: a device with the bootstrap password cannot flood the queue; an RA meets only the label cap', async (t) => {
  const { gw, cli } = await gateway(t, {
    users: USERS,
    labels: { default: { approval: 'manual', registration_authorities: ['user:ra-1'] } },
    extra: { approval: { max_pending_per_source: 3, max_pending_per_label: 5, retry_after: 9 } },
  });
  const ids: string[] = [];
  const first = await makeCsr('plc-flood-0');
  ids.push(heldId(t, await enroll(gw, first.b64), 9));
  for (let i = 1; i < 3; i++) ids.push(heldId(t, await enroll(gw, (await makeCsr(`plc-flood-${i}`)).b64), 9));
  const full = await enroll(gw, (await makeCsr('plc-flood-3')).b64);
  assertReason(t, full, 503, /too many requests waiting for approval from this address \(3\)/);
  t.is(full.headers['retry-after'], '9');
  // repeating a held request is no new entry
  t.is(heldId(t, await enroll(gw, first.b64), 9), ids[0]!);
  heldId(t, await enroll(gw, (await makeCsr('plc-ra-0')).b64, { auth: basic('ra-1', 'pwra') }), 9);
  heldId(t, await enroll(gw, (await makeCsr('plc-ra-1')).b64, { auth: basic('ra-1', 'pwra') }), 9);
  assertReason(t, await enroll(gw, (await makeCsr('plc-ra-2')).b64, { auth: basic('ra-1', 'pwra') }), 503, /on label "default" \(5\)/);
  // ids are 128 random bits; a 202 names only the request it answers
  t.is(new Set(ids).size, 3);
  for (const id of ids) t.regex(id, /^[0-9a-f]{32}$/);
  t.is((await listed(t, cli)).length, 5);
});

test('attacker: a few addresses sharing the bootstrap password cannot lock every other device out of the queue; an operator rejects a flood by address at once', async (t) => {
  const { gw, cli } = await gateway(t, {
    labels: { default: { approval: 'manual' } },
    extra: { approval: { max_pending_per_source: 3, max_pending_per_identity: 4, max_pending_per_label: 10 } },
  });
  const from = (localAddress: string, cn: string) => makeCsr(cn).then((c) => enroll(gw, c.b64, { localAddress }));
  for (let i = 0; i < 3; i++) heldId(t, await from('127.0.0.1', `flood-a${i}`), 60);
  heldId(t, await from('127.0.0.2', 'flood-b0'), 60);
  // the shared identity is at its cap: an address that already waits gets no more
  assertReason(t, await from('127.0.0.2', 'flood-b1'), 503, /for this identity \(4\)/);
  // a device on an address with nothing waiting still gets in line, once
  const device = await makeCsr('plc-real');
  const id = heldId(t, await enroll(gw, device.b64, { localAddress: '127.0.0.3' }), 60);
  t.is(heldId(t, await enroll(gw, device.b64, { localAddress: '127.0.0.3' }), 60), id);
  assertReason(t, await from('127.0.0.3', 'plc-real-2'), 503, /for this identity/);
  // the operator clears the flood from one address in one command
  const bulk = await cli('reject', '--source', '127.0.0.1', '--reason', 'flood', '--by', 'op');
  t.is(bulk.code, 0, bulk.stderr.toString());
  t.regex(bulk.stderr.toString(), /rejected 3 request\(s\)/);
  const left = (await listed(t, cli)).map((r) => r.source).sort();
  t.deepEqual(left, ['127.0.0.2', '127.0.0.3']);
  // a bulk reject needs a filter and a reason, and takes no id with it
  t.is((await cli('reject', '--reason', 'x')).code, 2);
  t.is((await cli('reject', id, '--source', '127.0.0.3', '--reason', 'x')).code, 2);
});

test('a replica that died between claiming an approved request and answering: the claim lapses after its lease and the next poll is issued; a fresh claim is never issued twice', async (t) => {
  const { gw, cli } = await gateway(t, { labels: { default: { approval: 'manual' } } });
  const store = new LmdbApprovalStore(approvalsPath(gw.dataDir));
  t.teardown(() => store.close());
  const claimDied = async (cn: string, claimedAgoMs: number) => {
    const csr = await makeCsr(cn);
    const id = heldId(t, await enroll(gw, csr.b64), 60);
    t.is((await cli('approve', id)).code, 0);
    // what a replica's claim leaves behind when it is killed before it answers
    t.truthy(await store.transition(id, ['approved'], { state: 'issuing', claimedAt: Date.now() - claimedAgoMs, removeAt: Date.now() + 86_400_000 }));
    return { id, poll: () => enroll(gw, csr.b64) };
  };
  const lapsed = await claimDied('plc-claim-lapsed', 11 * 60_000);
  t.is(issuedCert(t, await lapsed.poll()).subject, 'CN=plc-claim-lapsed');
  t.like(await store.get(lapsed.id), { state: 'issued' });
  const fresh = await claimDied('plc-claim-fresh', 1000);
  t.is(heldId(t, await fresh.poll(), 60), fresh.id);
  t.is([...gw.gateway.ledger!.store.list({ subject: 'CN=plc-claim-fresh' })].length, 0);
});

test('expiry: recorded (audit line, state expired, cannot be approved), and the next poll is a new request', async (t) => {
  const { gw, cli } = await gateway(t, { labels: { default: { approval: 'manual' } }, extra: { approval: { expiry: '1s', keep_decided: '1h' } } });
  const csr = await makeCsr('plc-expire');
  const id = heldId(t, await enroll(gw, csr.b64), 60);
  t.true(await eventually(() => gw.logs.some((l) => l.msg === 'approval request expired' && l.id === id), 15_000));
  const [row] = await listed(t, cli, '--all');
  t.like(row, { id, state: 'expired' });
  const late = await cli('approve', id);
  t.is(late.code, 1);
  t.regex(late.stderr, /cannot be approved: it is expired/);
  const again = heldId(t, await enroll(gw, csr.b64), 60);
  t.not(again, id);
  t.is(gw.logs.filter((l) => l.msg === 'approval request expired' && l.id === id).length, 1);
});

test('the hook runs with the request in its environment, is killed after hook_timeout, and its failure is logged', async (t) => {
  const tmp = await scratchDir('estgw-hook-');
  t.teardown(() => tmp.remove());
  const script = tmp.path('hook.mjs');
  await writeFile(script, `import { writeFileSync } from 'node:fs';
writeFileSync(process.argv[2], JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('ESTGW_REQUEST_')))));
setInterval(() => {}, 1000);
`);
  const outFile = tmp.path('env.json');
  const { gw } = await gateway(t, {
    labels: { default: { approval: 'manual', grants: [{ identity: '*', dns_names: ['*'] }] } },
    extra: { approval: { hook: [process.execPath, script, outFile], hook_timeout: 1 } },
  });
  const id = heldId(t, await enroll(gw, (await makeCsr('plc-hook', { subjectAltNames: [{ type: 'dns', value: 'plc-hook.line3.plant' }] })).b64), 60);
  t.true(await eventually(() => readFile(outFile, 'utf8').then(() => true, () => false), 10_000));
  t.deepEqual(JSON.parse(await readFile(outFile, 'utf8')), {
    ESTGW_REQUEST_ID: id, ESTGW_REQUEST_LABEL: 'default', ESTGW_REQUEST_SUBJECT: 'CN=plc-hook', ESTGW_REQUEST_NAMES: 'dns:plc-hook.line3.plant',
    ESTGW_REQUEST_IDENTITY: 'user:estuser', ESTGW_REQUEST_SOURCE: '127.0.0.1',
  });
  t.true(await eventually(() => gw.logs.some((l) => l.msg === 'approval hook failed' && l.id === id), 10_000));
});

test('restart: a pending request survives in DATA_DIR/approvals and is approved after it', async (t) => {
  const tmp = await scratchDir('estgw-restart-');
  t.teardown(() => tmp.remove());
  const o = { dataDir: tmp.dir, labels: { default: { approval: 'manual' } } };
  const csr = await makeCsr('plc-restart');
  const first = await startTestGateway(o);
  const id = heldId(t, await enroll(first, csr.b64), 60);
  await first.close();
  const { gw, cli } = await gateway(t, o);
  const [row] = await listed(t, cli);
  t.like(row, { id, state: 'pending', polls: 1 });
  t.is(heldId(t, await enroll(gw, csr.b64), 60), id);
  t.is((await cli('approve', id)).code, 0);
  t.is(issuedCert(t, await enroll(gw, csr.b64)).subject, 'CN=plc-restart');
});

test('serverkeygen is held too; after approval the next poll gets the generated key and its certificate, and a simpleenroll of the same names is another request', async (t) => {
  const { gw, cli } = await gateway(t, { labels: { default: { approval: 'manual' } } });
  const csr = await makeCsr('plc-keygen');
  const id = heldId(t, await enroll(gw, csr.b64, { op: 'serverkeygen' }), 60);
  t.not(heldId(t, await enroll(gw, csr.b64), 60), id);
  t.is((await cli('approve', id)).code, 0);
  const res = await enroll(gw, csr.b64, { op: 'serverkeygen' });
  t.is(res.status, 200, res.body.toString());
  t.is(serverKeygenAnswer(t, res.headers['content-type']!, res.body).cert.subject, 'CN=plc-keygen');
});

test('a name that would mislead a terminal (right-to-left override, line separator) is never queued; list and show escape the invisible characters a name may carry (a joiner)', async (t) => {
  const { gw, cli } = await gateway(t, { labels: { default: { approval: 'manual' } } });
  assertReason(t, await enroll(gw, (await makeCsr('plc-7\u202egnp.exe\u2028x')).b64), 400, /formatting character/);
  t.is((await cli('list')).stdout.toString().trim(), '', 'nothing queued');
  const id = heldId(t, await enroll(gw, (await makeCsr('plc-7\u200dx')).b64), 60);
  const list = await cli('list');
  t.is(list.code, 0, list.stderr);
  const shown = await cli('show', id);
  for (const out of [list.stdout.toString(), shown.stdout.toString()]) {
    t.true(out.includes('plc-7\\u200dx'), out);
    t.false(/\p{Cf}/u.test(out));
  }
});
