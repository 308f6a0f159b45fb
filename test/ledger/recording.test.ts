// What the ledger records at each kind of signing (a label's CA, a sub-CA for a
// lower layer, islanded fallback), that nothing leaves unrecorded, CRL
// metrics and /readyz, and when CRLs are signed again.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toPem } from '../../src/est/base64.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { createRootCa } from '../../src/pki/ca.js';
import { foreignCa } from '../helpers/client-certs.js';
import { openssl, run, scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { freePort } from '../cache/helpers.js';
import { startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

const serialOf = (x: X509Certificate) => x.serialNumber.toLowerCase().replace(/^(00)+/, '');
const sample = async (gw: Awaited<ReturnType<typeof startTestGateway>>, re: RegExp): Promise<number | undefined> => {
  const m = re.exec(await gw.gateway.metrics.registry.metrics());
  return m ? Number(m[1]) : undefined;
};

test('a sub-CA for a lower layer and an islanded certificate are on record as such; revoking the sub-CA puts it on the CRL; metrics count per CA', async (t) => {
  const tmp = await scratchDir('estgw-ledger-rec-');
  const parentTrust = await foreignCa(tmp.dir, 'unreachable-parent');
  const gw = await startTestGateway({
    cas: { root: {}, local: { subject: '/CN=islanded sub CA', create: 'subordinate', parent: 'root' } },
    labels: {
      default: { grants: [{ identity: 'user:estuser', common_names: ['*'], allow_ca: true, max_path_len: 0 }] },
      island: { mode: 'forward', fallback: 'issue', ca: 'local', upstream: { url: `https://127.0.0.1:${await freePort()}/.well-known/est`, trust: parentTrust.pemFile, connect_timeout: 1 } },
    },
  });
  t.teardown(() => gw.close().then(() => tmp.remove()));
  const ledger = gw.gateway.ledger!;

  const subCa = issuedCert(t, await enroll(gw, (await makeCsr('level2 sub CA', { basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign', 'cRLSign'] })).b64));
  t.true(subCa.ca);
  t.like(ledger.store.get('root', serialOf(subCa)), { caCert: true, islanded: false, subject: 'CN=level2 sub CA', label: 'default', op: 'simpleenroll' });

  const island = issuedCert(t, await enroll(gw, (await makeCsr('isl-1')).b64, { label: 'island' }));
  t.like(ledger.store.get('local', serialOf(island)), { islanded: true, ca: 'local', issuer: 'CN=islanded sub CA', label: 'island', identity: 'user:estuser' });
  t.true(ledger.store.get('local', serialOf(island))!.der.equals(island.raw), 'the record holds the certificate that was returned');

  ledger.revoke(serialOf(subCa), 'caCompromise', 'test');
  const crl = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/root.crl`, { ca: gw.caPem });
  t.regex(await openssl(['crl', '-inform', 'DER', '-text', '-noout'], { input: crl.body }), new RegExp(`Serial Number: ${serialOf(subCa).toUpperCase()}[\\s\\S]*CA Compromise`));
  // the islanded sub-CA publishes its own CRL, signed by its own key
  const localCrl = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/local.crl`, { ca: gw.caPem });
  t.is(localCrl.status, 200);
  t.regex(await openssl(['crl', '-inform', 'DER', '-noout', '-issuer'], { input: localCrl.body }), /islanded sub CA/);
  assertReason(t, await httpsRequest(`https://127.0.0.1:${gw.port}/crl/nosuch.crl`, { ca: gw.caPem }), 404);
  // the index names every local CA's CRL with its issuer, key identifier and number
  const index = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/`, { ca: gw.caPem });
  t.is(index.status, 200);
  t.regex(String(index.headers['content-type']), /^application\/json/);
  const crls = (JSON.parse(index.body.toString()) as { crls: { name: string; issuer: string; keyId: string; number: number }[] }).crls;
  t.deepEqual(crls.map((c) => c.name).sort(), ['local', 'root']);
  t.like(crls.find((c) => c.name === 'local'), { issuer: 'CN=islanded sub CA' });
  t.true(crls.find((c) => c.name === 'root')!.number >= 2, 'the revocation re-signed the root CRL');
  const localText = (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], { input: localCrl.body })).replace(/[:\s]/g, '').toLowerCase();
  t.true(localText.includes(`authoritykeyidentifier${crls.find((c) => c.name === 'local')!.keyId}`) || localText.includes(`keyid${crls.find((c) => c.name === 'local')!.keyId}`));

  t.is(await sample(gw, /^estgw_ca_certificates_issued_total\{ca="root"\} (\d+)$/m), 1);
  t.is(await sample(gw, /^estgw_ca_certificates_issued_total\{ca="local"\} (\d+)$/m), 1);
  t.is(await sample(gw, /^estgw_ca_certificates_revoked\{ca="root"\} (\d+)$/m), 1);
  t.is(await sample(gw, /^estgw_ca_certificates_revoked\{ca="local"\} (\d+)$/m), 0);
  t.true((await sample(gw, /^estgw_crl_age_seconds\{ca="root"\} (\d+)$/m))! >= 0);
  t.true((await sample(gw, /^estgw_crl_next_update_seconds\{ca="root"\} (\d+)$/m))! > Date.now() / 1000);
});

test('a certificate the ledger cannot record is never returned: 503 text/plain with a reason, nothing else', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  await gw.gateway.ledger!.store.close();
  const res = await enroll(gw, (await makeCsr('unrecorded')).b64);
  assertReason(t, res, 503, /ledger could not record the certificate/);
  t.false(res.body.includes('MII'), 'no certificate in the answer');
  t.is(gw.audit().at(-1)?.outcome, 'failed');
});

test('/readyz reports a local CRL past its nextUpdate; the CRL is signed again when next asked for', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  const readyz = async () => JSON.parse((await httpsRequest(`https://127.0.0.1:${gw.port}/readyz`, { ca: gw.caPem })).body.toString());
  t.deepEqual((await readyz()).crls, { root: 'ok' });
  // as if the CA could not sign for a week
  const past = new Date(Date.now() - 3600_000).toISOString();
  const stale = gw.gateway.ledger!.store.updateCrl('root', (prev) => ({ ...prev!, thisUpdate: new Date(Date.now() - 8 * 86_400_000).toISOString(), nextUpdate: past }));
  t.regex((await readyz()).crls.root, /past its nextUpdate/);
  const crl = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/root.crl`, { ca: gw.caPem });
  t.is(crl.status, 200);
  t.false(crl.body.equals(stale!.der));
  t.deepEqual((await readyz()).crls, { root: 'ok' });
  t.is(gw.gateway.ledger!.store.crl('root')!.number, stale!.number + 1);
});

test('CRLs are signed again at half their validity and when the CA key changes, with a higher cRLNumber each time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'estgw-crl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = await createRootCa('plant', join(dir, 'ca'), { subject: [['CN', 'plant CA']], days: 30 });
  let now = Date.parse('2030-01-01T00:00:00Z');
  const day = 86_400_000;
  const ledger = Ledger.open(dir, new Map([['plant', { material: ca, crlValidityMs: 4 * day }]]), { now: () => now });
  t.teardown(() => ledger.close());
  const number = () => ledger.store.crl('plant')!.number;

  ledger.refreshCrls();
  t.is(number(), 1);
  now += 1.9 * day;
  ledger.refreshCrls();
  t.is(number(), 1, 'not yet half of four days');
  now += 0.2 * day;
  t.truthy(ledger.crl('plant'));
  t.is(number(), 2, 'past half: signed again');
  const text = await openssl(['crl', '-inform', 'DER', '-text', '-noout'], { input: ledger.crl('plant')! });
  t.regex(text, /Last Update: Jan +3 02:24:00 2030 GMT\s*\n\s*Next Update: Jan +7 02:24:00 2030 GMT/);

  const renewed = await createRootCa('plant', join(dir, 'ca2'), { subject: [['CN', 'plant CA']], days: 30 });
  ledger.setCas(new Map([['plant', { material: renewed, crlValidityMs: 4 * day }]]));
  ledger.refreshCrls();
  t.is(number(), 3, 'a new key signs a new CRL at once');
  const pem = join(dir, 'renewed.pem');
  await writeFile(pem, toPem('CERTIFICATE', renewed.certDer));
  const checked = await run('openssl', ['crl', '-inform', 'DER', '-noout', '-CAfile', pem], { input: ledger.crl('plant')! });
  t.is(checked.code, 0, checked.stderr);
  t.regex(checked.stderr + checked.stdout.toString(), /verify OK/i);
});
