// What one issuance-ledger write costs, next to what signing the certificate
// costs: `node dist/bench/ledger-write.js [--records N] [--in-flight N] [--sync os|fsync]`
// (`[server] ledger_sync`, default os as in the gateway).
// Latency alone (one write at a time: a commit and a flush each), then under
// load (N in flight: lmdb batches them into one transaction and one flush),
// with the CPU time this process spends per write.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildName } from '../src/est/name.js';
import { describeSpki } from '../src/est/spki.js';
import { LmdbLedgerStore } from '../src/ledger/lmdb-store.js';
import type { CertificateRecord } from '../src/ledger/store.js';
import { createRootCa } from '../src/pki/ca.js';
import { Signer } from '../src/pki/issuance.js';
import { generateKey, spkiDer } from '../src/pki/keys.js';
import { OID } from '../src/est/oids.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '4000' }, 'in-flight': { type: 'string', default: '16' }, sync: { type: 'string', default: 'os' } } });
if (values.sync !== 'os' && values.sync !== 'fsync') throw new Error('--sync takes os or fsync');
const sync = values.sync;
const total = Number(values.records);
const inFlight = Number(values['in-flight']);
const dir = mkdtempSync(join(tmpdir(), 'estgw-ledger-bench-'));

const ca = await createRootCa('bench', join(dir, 'ca'), { subject: [['CN', 'bench CA']], days: 30 });
const spki = spkiDer(await generateKey('p256'));
const signer = new Signer(ca);
const issue = (i: number) =>
  signer.issue({ subjectDer: buildName([['CN', `bench-${i}`]]), spki, key: describeSpki(spki), validityDays: 30, extKeyUsage: [OID.clientAuth] });
const record = (i: number): CertificateRecord => {
  const c = issue(i);
  return {
    serial: c.serialHex, ca: 'bench', issuer: 'CN=bench CA', issuerKeyId: '00', subject: `CN=bench-${i}`, sans: [], keyType: 'P256',
    notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), issuedAt: new Date().toISOString(), label: 'default',
    op: 'simpleenroll', identity: 'user:estuser', islanded: false, caCert: false, der: c.der,
  };
};

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// signing alone, for scale
const signN = 2000;
let cpu0 = cpuMs();
for (let i = 0; i < signN; i++) issue(i);
const signCpuUs = ((cpuMs() - cpu0) * 1000) / signN;

const records = Array.from({ length: total }, (_, i) => record(i));
const store = new LmdbLedgerStore(join(dir, 'ledger'), sync);

const seqN = Math.min(200, total);
let t0 = performance.now();
for (let i = 0; i < seqN; i++) await store.record(records[i]!);
const seqLatencyMs = (performance.now() - t0) / seqN;

let next = seqN;
cpu0 = cpuMs();
t0 = performance.now();
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < total) await store.record(records[next++]!);
  }),
);
const loadedN = total - seqN;
const seconds = (performance.now() - t0) / 1000;
const writeCpuUs = ((cpuMs() - cpu0) * 1000) / loadedN;
await store.close();
rmSync(dir, { recursive: true, force: true });

const out = {
  sync,
  recordBytes: records[0]!.der.length,
  oneAtATimeLatencyMs: +seqLatencyMs.toFixed(2),
  inFlight,
  writesPerSec: Math.round(loadedN / seconds),
  cpuUsPerWrite: Math.round(writeCpuUs),
  cpuUsPerSignature: Math.round(signCpuUs),
  loadavg: (await import('node:os')).loadavg().map((l) => +l.toFixed(2)),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
