// Issue 12 with est-gateway's edge client: the daemon's enrollment is held,
// `estgw client status` says since when it waits for approval, the operator
// approves with `estgw requests`, and the pair lands on disk.
import test from 'ava';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ClientDaemon } from '../../src/client/daemon.js';
import type { CertSpec } from '../../src/client/spec.js';
import { readStatus } from '../../src/client/status.js';
import { parseSpan } from '../../src/util/durations.js';
import { eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { startTestGateway } from '../helpers/gateway.js';
import { estgw } from '../client/support/client-cli.js';
import { listed, requestsCli } from './helpers.js';

test('the daemon waits while the request is held, status shows it, the operator approves, the pair lands on disk', async (t) => {
  const tmp = await scratchDir('estgw-approval-client-');
  t.teardown(() => tmp.remove());
  const gw = await startTestGateway({ labels: { default: { approval: 'manual' } }, extra: { approval: { retry_after: 1 } } });
  t.teardown(() => gw.close());
  const spec: CertSpec = {
    name: 'plc-daemon',
    url: gw.url,
    trustFiles: [gw.caFile],
    subject: [['CN', 'plc-daemon.plant.local']],
    subjectAltNames: [],
    ca: false,
    keyType: 'p256',
    certFile: tmp.path('plc.cert.pem'),
    keyFile: tmp.path('plc.key.pem'),
    policy: { threshold: parseSpan('80%'), retry: parseSpan('1s'), jitter: parseSpan('1%'), rotateKey: true },
    method: 'simplereenroll',
    auth: { username: 'estuser', password: 'estpwd' },
    pop: 'auto',
    timeoutMs: 10_000,
  };
  const statusFile = tmp.path('status.json');
  const daemon = new ClientDaemon({ certs: [spec], statusFile, logLevel: 'silent' });
  t.teardown(() => daemon.stop());
  await daemon.start();

  const cli = requestsCli({ dataDir: gw.dataDir });
  // held, and polled again with the same key: one entry
  t.true(await eventually(async () => (await readStatus(statusFile).catch(() => undefined))?.certs[0]?.pendingSince !== undefined, 15_000));
  t.true(await eventually(async () => ((await listed(t, cli)).at(0)?.polls ?? 0) >= 2, 20_000));
  const rows = await listed(t, cli);
  t.is(rows.length, 1);
  t.like(rows[0], { state: 'pending', subject: 'CN=plc-daemon.plant.local', identity: 'user:estuser' });

  const shown = await estgw(['client', 'status', '--status-file', statusFile]);
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout.toString(), /^ {2}waiting {7}for approval since \d{4}-\d\d-\d\dT[\d:.]+Z \(.* ago\)$/m);
  t.false(await stat(spec.certFile).then(() => true, () => false));

  t.is((await cli('approve', rows[0]!.id, '--by', 'operator-cara')).code, 0);
  t.true(await eventually(() => stat(spec.certFile).then(() => true, () => false), 20_000));
  await daemon.stop();
  const cert = new X509Certificate(await readFile(spec.certFile));
  t.is(cert.subject, 'CN=plc-daemon.plant.local');
  t.true(cert.publicKey.equals(createPublicKey(await readFile(spec.keyFile, 'utf8'))));
  t.is([...gw.gateway.ledger!.store.list({ subject: 'CN=plc-daemon.plant.local' })].length, 1);
  const after = await readStatus(statusFile);
  t.is(after.certs[0]!.pendingSince, undefined);
  t.notRegex((await estgw(['client', 'status', '--status-file', statusFile])).stdout.toString(), /waiting/);
});
