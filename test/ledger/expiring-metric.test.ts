// estgw_ca_certificates_expiring{ca}: certificates a local CA signed that expire
// within 7 days, not revoked, not yet expired, read from an index by notAfter
// (a scrape reads the week's expiries, not the ledger); a ledger written before
// the index is indexed once when opened.
import test from 'ava';
import { open } from 'lmdb';
import { join } from 'node:path';
import { LmdbLedgerStore } from '../../src/ledger/lmdb-store.js';
import type { CertificateRecord } from '../../src/ledger/store.js';
import { scratchDir } from '../helpers/cli.js';
import { enroll, issuedCert } from '../helpers/est.js';
import { startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';

const D = 86_400_000;
const serialOf = (x: { serialNumber: string }) => x.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');

test('counts per CA what expires within 7 days, leaving out revoked, expired and later certificates', async (t) => {
  const gw = await startTestGateway({
    cas: { root: {}, other: { subject: '/CN=other CA' } },
    labels: { short: { cert_days: 3 }, long: { cert_days: 30 }, othershort: { cert_days: 2, ca: 'other' } },
  });
  t.teardown(() => gw.close());
  const get = async (label: string, cn: string) => issuedCert(t, await enroll(gw, (await makeCsr(cn)).b64, { label }));
  const short = [await get('short', 's1'), await get('short', 's2'), await get('short', 's3')];
  await get('long', 'l1');
  await get('othershort', 'o1');
  gw.gateway.ledger!.revoke(serialOf(short[0]!), 'keyCompromise', 'test');
  // already expired, and just past the window: on record, not counted
  const template = gw.gateway.ledger!.store.get('root', serialOf(short[1]!))!;
  await gw.gateway.ledger!.store.record({ ...template, serial: 'e1', notAfter: new Date(Date.now() - 60_000).toISOString() });
  await gw.gateway.ledger!.store.record({ ...template, serial: 'e2', notAfter: new Date(Date.now() + 7 * D + 3600_000).toISOString() });
  const metrics = await gw.gateway.metrics.registry.metrics();
  t.regex(metrics, /^estgw_ca_certificates_expiring\{ca="root"\} 2$/m);
  t.regex(metrics, /^estgw_ca_certificates_expiring\{ca="other"\} 1$/m);
});

const record = (serial: string, notAfter: number, ca = 'plant'): CertificateRecord => ({
  serial, ca, issuer: 'CN=plant', issuerKeyId: '00', subject: `CN=${serial}`, sans: [], keyType: 'P256', notBefore: new Date(notAfter - 30 * D).toISOString(),
  notAfter: new Date(notAfter).toISOString(), issuedAt: new Date().toISOString(), label: 'default', op: 'simpleenroll', identity: 'user:x', islanded: false, caCert: false,
  der: Buffer.from([0x30, 0x00]),
});

test('window edges: expiring at exactly now is out, at exactly now + 7 days is in; a ledger from before the index is indexed when opened', async (t) => {
  const tmp = await scratchDir('estgw-expiring-');
  t.teardown(() => tmp.remove());
  const path = join(tmp.dir, 'ledger');
  const now = Date.parse('2031-05-01T12:00:00Z');
  let store = new LmdbLedgerStore(path, 'os');
  for (const [s, at] of [['a0', now], ['a1', now + 1000], ['a2', now + 7 * D], ['a3', now + 7 * D + 1000], ['a4', now - D]] as const) await store.record(record(s, at));
  await store.record(record('b1', now + D, 'line'));
  t.deepEqual(Object.fromEntries(store.expiringCounts(now, now + 7 * D)), { plant: 2, line: 1 });
  // `certs list --expiring 7d` reads the same window, with the other filters on top
  t.deepEqual([...store.list({ expiringWithinMs: 7 * D, now })].map((r) => r.serial).sort(), ['a1', 'a2', 'b1']);
  t.deepEqual([...store.list({ expiringWithinMs: 7 * D, now, ca: 'line' })].map((r) => r.serial), ['b1']);
  t.deepEqual([...store.list({ now })].length, 6);
  await store.close();

  // as a ledger written before the index existed: no index, no marker
  const env = open({ path, maxDbs: 8 });
  await env.openDB({ name: 'expiry' }).clearAsync();
  await env.openDB({ name: 'meta' }).remove('index');
  t.is([...env.openDB({ name: 'expiry' }).getKeys()].length, 0);
  await env.close();
  store = new LmdbLedgerStore(path, 'os');
  t.teardown(() => store.close());
  t.deepEqual(Object.fromEntries(store.expiringCounts(now, now + 7 * D)), { plant: 2, line: 1 });
});
