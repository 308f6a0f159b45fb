// Every certificate a layer's local CAs sign is on record, not only what EST
// issues: the gateway's own TLS server certificate and a sub-CA created at
// setup (at `estgw ca init` and at every start, so a data directory from before
// the ledger, or a crash between writing and recording, is made good). Being on
// record, they can be listed and revoked like any other.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromPemAll } from '../../src/est/base64.js';
import { LmdbLedgerStore } from '../../src/ledger/lmdb-store.js';
import { openssl, run, scratchDir } from '../helpers/cli.js';
import { startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { MAIN } from '../helpers/serve-process.js';

const serialOf = (x: X509Certificate) => x.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
const estgwCli = (args: string[]) => run(process.execPath, [MAIN, ...args], { env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });

test('the TLS server certificate and a sub-CA created at setup are on record (op tls-server, subordinate-ca), again after the ledger was lost, and revocable', async (t) => {
  const tmp = await scratchDir('estgw-setup-records-');
  t.teardown(() => tmp.remove());
  const cas = { root: {}, line: { create: 'subordinate', parent: 'root', subject: '/CN=line sub CA' } };
  const server = { tls_issuer: 'line' };
  let gw = await startTestGateway({ dataDir: tmp.dir, cas, server });
  const tls = new X509Certificate(fromPemAll(gw.gateway.pki.tls.certChainPem, 'CERTIFICATE')[0]!);
  const sub = gw.gateway.pki.cas.get('line')!.cert;
  const check = (ledger: NonNullable<typeof gw.gateway.ledger>) => {
    t.like(ledger.store.get('line', serialOf(tls)), { op: 'tls-server', label: 'setup', identity: 'setup', caCert: false, subject: tls.subject.split('\n').join(','), issuer: 'CN=line sub CA' });
    t.true(ledger.store.get('line', serialOf(tls))!.der.equals(tls.raw));
    t.like(ledger.store.get('root', serialOf(sub)), { op: 'subordinate-ca', label: 'setup', caCert: true, subject: 'CN=line sub CA' });
    t.deepEqual([...ledger.store.list()].map((r) => r.op).sort(), ['subordinate-ca', 'tls-server'], 'nothing else, the root self-signed is no issuance');
  };
  check(gw.gateway.ledger!);

  // restart: no second record; a lost ledger (or one older than this code) is filled in again
  await gw.close();
  gw = await startTestGateway({ dataDir: tmp.dir, cas, server });
  check(gw.gateway.ledger!);
  await gw.close();
  await rm(join(tmp.dir, 'ledger'), { recursive: true, force: true });
  gw = await startTestGateway({ dataDir: tmp.dir, cas, server });
  t.teardown(() => gw.close());
  check(gw.gateway.ledger!);

  // on record, so an operator can revoke the gateway's own certificate like any other
  const r = await estgwCli(['certs', 'revoke', serialOf(tls), '--reason', 'superseded', '--data-dir', tmp.dir, '--set', 'cas.root.create=root', '--set', 'cas.line.create=subordinate', '--set', 'cas.line.parent=root', '--set', 'cas.line.subject=/CN=line sub CA']);
  t.is(r.code, 0, r.stderr);
  const crl = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/line.crl`, { ca: gw.caPem });
  t.regex(await openssl(['crl', '-inform', 'DER', '-text', '-noout'], { input: crl.body }), new RegExp(`Serial Number: ${serialOf(tls).toUpperCase()}`));
});

test('`estgw ca init` puts the TLS certificate it signs on record before any gateway runs', async (t) => {
  const tmp = await scratchDir('estgw-init-records-');
  t.teardown(() => tmp.remove());
  const r = await estgwCli(['ca', 'init', '--data-dir', tmp.dir]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout.toString(), /on record: tls-server certificate signed by CA "\w+"/);
  const tlsPem = fromPemAll(await readFile(join(tmp.dir, 'tls', 'server.cert.pem'), 'utf8'), 'CERTIFICATE')[0]!;
  const store = new LmdbLedgerStore(join(tmp.dir, 'ledger'));
  t.teardown(() => store.close());
  const recs = [...store.list()];
  t.is(recs.length, 1);
  t.like(recs[0], { op: 'tls-server', serial: serialOf(new X509Certificate(tlsPem)) });
});
