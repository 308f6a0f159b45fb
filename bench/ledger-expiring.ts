// What a Prometheus scrape costs with estgw_ca_certificates_expiring on a large
// ledger: `node dist/bench/ledger-expiring.js [--records 100000] [--expiring 1000]`.
// Fills a ledger (certificates of ~600 bytes each, `--expiring` of them within the
// week), then times the index read the metric does, a whole scrape of the
// gateway's registry, and for comparison the full scan the index avoids.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildName } from '../src/est/name.js';
import { OID } from '../src/est/oids.js';
import { describeSpki } from '../src/est/spki.js';
import { Ledger } from '../src/ledger/ledger.js';
import { createRootCa } from '../src/pki/ca.js';
import { Signer } from '../src/pki/issuance.js';
import { generateKey, spkiDer } from '../src/pki/keys.js';
import { EXPIRING_WINDOW_MS, GatewayMetrics } from '../src/server/metrics.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '100000' }, expiring: { type: 'string', default: '1000' } } });
const total = Number(values.records);
const expiring = Number(values.expiring);
const dir = mkdtempSync(join(tmpdir(), 'estgw-expiring-bench-'));
const D = 86_400_000;

const ca = await createRootCa('bench', join(dir, 'ca'), { subject: [['CN', 'bench CA']], days: 3650 });
const spki = spkiDer(await generateKey('p256'));
const der = new Signer(ca).issue({ subjectDer: buildName([['CN', 'bench']]), spki, key: describeSpki(spki), validityDays: 30, extKeyUsage: [OID.clientAuth] }).der;
const ledger = Ledger.open(dir, new Map([['bench', { material: ca, crlValidityMs: 7 * D }]]), { sync: 'os' });
const now = Date.now();
let started = performance.now();
const batch: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  // the first `expiring` within the week, the rest spread over a year beyond it
  const notAfter = i < expiring ? now + ((i + 1) * EXPIRING_WINDOW_MS) / (expiring + 1) : now + EXPIRING_WINDOW_MS + D + ((i * 7919) % 365) * D;
  batch.push(ledger.store.record({
    serial: i.toString(16).padStart(8, '0'), ca: 'bench', issuer: 'CN=bench CA', issuerKeyId: '00', subject: `CN=device-${i}`, sans: [], keyType: 'P256',
    notBefore: new Date(now - D).toISOString(), notAfter: new Date(notAfter).toISOString(), issuedAt: new Date(now).toISOString(), label: 'default',
    op: 'simpleenroll', identity: 'user:estuser', islanded: false, caCert: false, der,
  }));
  if (batch.length === 1000) await Promise.all(batch.splice(0));
}
await Promise.all(batch);
console.log(`filled ${total} records (${expiring} expiring within 7 days) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

const metrics = new GatewayMetrics({ processMetrics: false });
metrics.watchLedger(ledger);
const time = async (what: string, n: number, fn: () => unknown) => {
  await fn(); // warm
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    started = performance.now();
    await fn();
    ms.push(performance.now() - started);
  }
  ms.sort((a, b) => a - b);
  console.log(`${what}: median ${ms[Math.floor(n / 2)]!.toFixed(2)} ms, max ${ms.at(-1)!.toFixed(2)} ms (${n} runs)`);
};
await time('expiring index read (what the metric does)', 50, () => ledger.expiringCounts(EXPIRING_WINDOW_MS));
await time('whole scrape of the gateway registry', 50, () => metrics.registry.metrics());
await time('full scan the index avoids (certs list --expiring 7d)', 5, () => [...ledger.store.list({ expiringWithinMs: EXPIRING_WINDOW_MS })].length);
const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith('estgw_ca_certificates_expiring{'));
console.log(line);
await ledger.close();
rmSync(dir, { recursive: true, force: true });
