// Issue 11 at a signing layer, through the real TLS gateway, the real `estgw
// certs` CLI and real openssl: every certificate on record before it is
// returned, revocation refusing renewal and authentication, and the CA's CRL.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { toPem } from '../../src/est/base64.js';
import { LmdbLedgerStore } from '../../src/ledger/lmdb-store.js';
import { OID } from '../../src/est/oids.js';
import { type RunResult, openssl, run, scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { httpPlain, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CRL_URL = 'http://crl.level3.plant.test/crl/root.crl';

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-ledger-');
  gw = await startTestGateway({
    cas: { root: { crl_url: CRL_URL } },
    server: { crl_listen: '127.0.0.1:0' },
    labels: {
      default: {},
      other: {},
      ras: { ext_key_usage: ['clientAuth', 'cmcRA'], grants: [{ identity: 'user:estuser', common_names: ['*-ra'] }] },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

/** `estgw certs ...` on the running gateway's data directory, as an operator runs it. */
const certs = (...args: string[]): Promise<RunResult> => run(process.execPath, [MAIN, 'certs', ...args, '--data-dir', gw.dataDir], { env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });

async function enrolled(t: Parameters<typeof issuedCert>[0], cn: string, label?: string) {
  const csr = await makeCsr(cn);
  const cert = issuedCert(t, await enroll(gw, csr.b64, label ? { label } : {}));
  return { csr, cert, tls: { cert: cert.toString(), key: csr.keyPem }, serial: cert.serialNumber.toLowerCase().replace(/^(00)+/, '') };
}

const reenroll = async (cn: string, key: Awaited<ReturnType<typeof makeCsr>>['key'], tls: { cert: string; key: string }, o: { headers?: Record<string, string>; label?: string } = {}) =>
  enroll(gw, (await makeCsr(cn, { key })).b64, { op: 'simplereenroll', auth: null, ...tls, ...o });


test('enroll → certs list/show → renew → revoke: renewal and authentication refused with the reason, CRL names it, openssl verify -crl_check rejects', async (t) => {
  const first = await enrolled(t, 'plc-17');
  // the certificate names the CA's CRL distribution point
  t.regex(await openssl(['x509', '-noout', '-ext', 'crlDistributionPoints'], { input: first.cert.toString() }), new RegExp(`URI:${CRL_URL}`));

  const listed = await certs('list', '--json', '--subject', '*plc-17*');
  t.is(listed.code, 0, listed.stderr);
  const rows = listed.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
  t.is(rows.length, 1);
  t.like(rows[0], { serial: first.serial, ca: 'root', subject: 'CN=plc-17', label: 'default', identity: 'user:estuser', islanded: false, caCert: false, keyType: 'P256' });
  t.is(rows[0].notAfter, new Date(first.cert.validTo).toISOString());

  // renew with the certificate in TLS: the ledger links the renewal, the old one stays valid
  const renewed = issuedCert(t, await reenroll('plc-17', first.csr.key, first.tls));
  const renewedSerial = renewed.serialNumber.toLowerCase().replace(/^(00)+/, '');
  t.deepEqual(gw.gateway.ledger!.store.renewalsOf(first.serial), [renewedSerial]);

  // the operator's CLI revokes while the gateway runs; the gateway refuses at once
  const revoked = await certs('revoke', renewedSerial, '--reason', 'keyCompromise', '--by', 'operator-7');
  t.is(revoked.code, 0, revoked.stderr);
  const audit = JSON.parse(revoked.stdout.toString().trim().split('\n').at(-1)!);
  t.like(audit, { msg: 'certificate revoked', serial: renewedSerial, reason: 'keyCompromise', by: 'operator-7', ca: 'root' });
  t.throws(() => gw.gateway.ledger!.revoke(renewedSerial, 'superseded', 'again'), { message: /already revoked/ });

  const shown = await certs('show', renewedSerial);
  t.is(shown.code, 0, shown.stderr);
  const text = shown.stdout.toString();
  t.regex(text, new RegExp(`renews: +${first.serial}`));
  t.regex(text, /identity: +cert:device\/plc-17/);
  t.regex(text, /status: +revoked \(keyCompromise\)/);
  t.regex(text, /revoked: +\S+, keyCompromise, by operator-7/);
  t.true(text.includes(renewed.toString().trim()), 'show prints the PEM that was returned');

  // an online backup opens as a ledger of its own, revocation included
  const backup = await certs('backup', tmp.path('backup'));
  t.is(backup.code, 0, backup.stderr);
  const copy = new LmdbLedgerStore(tmp.path('backup'));
  t.like(copy.get('root', renewedSerial), { subject: 'CN=plc-17', revoked: { reason: 'keyCompromise', by: 'operator-7' } });
  t.true(copy.get('root', first.serial)!.der.equals(first.cert.raw));
  await copy.close();

  const renewedTls = { cert: renewed.toString(), key: first.csr.keyPem };
  // never renews, never authenticates on any label, never enrolls another certificate
  assertReason(t, await reenroll('plc-17', first.csr.key, renewedTls), 403, new RegExp(`serial ${renewedSerial}\\) was revoked .*: keyCompromise`));
  assertReason(t, await reenroll('plc-17', first.csr.key, renewedTls, { label: 'other' }), 403, /revoked.*keyCompromise/);
  assertReason(t, await enroll(gw, (await makeCsr('plc-17b')).b64, { auth: null, ...renewedTls }), 403, /client certificate .*revoked.*keyCompromise/);
  // with valid Basic credentials too: a revoked certificate presented is a refusal, not a fallback
  assertReason(t, await enroll(gw, (await makeCsr('plc-17b')).b64, { ...renewedTls }), 403, /revoked/);
  // this file's tests run at once: this refusal's line is the one naming this serial
  const refusal = gw.audit().filter((l) => String(l.reason).startsWith(`the client certificate (serial ${renewedSerial})`)).at(-1);
  t.regex(String(refusal?.reason), /^the client certificate \(serial [0-9a-f]+\) was revoked on \S+: keyCompromise$/, 'the refusal is audited with its reason');
  // the certificate it renewed was not revoked and still renews
  issuedCert(t, await reenroll('plc-17', first.csr.key, first.tls));

  // the CRL, over HTTPS (no client certificate, no credentials) and plain HTTP, byte for byte the same
  const https = await httpsRequest(`https://127.0.0.1:${gw.port}/crl/root.crl`, { ca: gw.caPem });
  t.is(https.status, 200);
  t.is(https.headers['content-type'], 'application/pkix-crl');
  const plain = await httpPlain(gw.gateway.crlPort!, '/crl/root.crl');
  t.is(plain.status, 200);
  t.is(plain.type, 'application/pkix-crl');
  t.true(plain.body.equals(https.body));
  const crlText = await openssl(['crl', '-inform', 'DER', '-text', '-noout'], { input: https.body });
  t.regex(crlText, /Version 2 \(0x1\)/);
  t.regex(crlText, /X509v3 CRL Number:\s*\n\s*[1-9]/);
  t.regex(crlText, /X509v3 Authority Key Identifier:/);
  t.regex(crlText, /Next Update: /);
  t.regex(crlText, new RegExp(`Serial Number: ${renewedSerial.toUpperCase()}\\s*\\n\\s*Revocation Date: .*\\n\\s*CRL entry extensions:\\s*\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*Key Compromise`));
  t.false(crlText.includes(first.serial.toUpperCase()), 'only the revoked certificate is listed');

  // openssl verify -crl_check: the revoked certificate fails, the one it renewed passes
  const root = toPem('CERTIFICATE', gw.gateway.pki.cas.get('root')!.certDer);
  await writeFile(tmp.path('root.pem'), root);
  await writeFile(tmp.path('crl.pem'), toPem('X509 CRL', https.body));
  await writeFile(tmp.path('revoked.pem'), renewed.toString());
  await writeFile(tmp.path('good.pem'), first.cert.toString());
  const verify = (f: string) => run('openssl', ['verify', '-crl_check', '-CAfile', tmp.path('root.pem'), '-CRLfile', tmp.path('crl.pem'), tmp.path(f)]);
  const bad = await verify('revoked.pem');
  t.not(bad.code, 0);
  t.regex(bad.stdout.toString() + bad.stderr, /certificate revoked/);
  const good = await verify('good.pem');
  t.is(good.code, 0, good.stdout.toString() + good.stderr);
});

test("a revoked RA certificate relays nothing: its renewal for a device (RFC 9440 Client-Cert) and its own requests are refused; a relayed revoked device certificate is refused too", async (t) => {
  const ra = await enrolled(t, 'line-ra', 'ras');
  t.true((ra.cert.keyUsage ?? []).includes(OID.cmcRA));
  const device = await enrolled(t, 'hmi-3');
  const relay = (x: X509Certificate) => ({ 'Client-Cert': `:${x.raw.toString('base64')}:` });
  // before: the RA renews the device's certificate on its behalf
  issuedCert(t, await reenroll('hmi-3', device.csr.key, ra.tls, { headers: relay(device.cert) }));

  // (the CLI revokes through the same Ledger.revoke; the first test runs it as a process)
  const ledger = gw.gateway.ledger!;
  ledger.revoke(device.serial, 'cessationOfOperation', 'test');
  assertReason(t, await reenroll('hmi-3', device.csr.key, ra.tls, { headers: relay(device.cert) }), 403, /certificate being renewed .*revoked.*cessationOfOperation/);

  ledger.revoke(ra.serial, 'affiliationChanged', 'test');
  const other = await enrolled(t, 'hmi-4');
  assertReason(t, await reenroll('hmi-4', other.csr.key, ra.tls, { headers: relay(other.cert) }), 403, /RA certificate .*revoked.*affiliationChanged/);
  assertReason(t, await enroll(gw, (await makeCsr('hmi-5')).b64, { auth: null, ...ra.tls }), 403, /RA certificate .*revoked/);
});

test('--help of every certs command prints its usage and exits 0; bad arguments exit 2 with the usage', async (t) => {
  const helps = [['--help'], ['list', '--help'], ['show', '--help'], ['export', '--help'], ['backup', '--help'], ['revoke', '--help']];
  // in parallel: each run starts a whole node process
  const [badReason, unknown, ...helped] = await Promise.all([
    certs('revoke', 'ab12', '--reason', 'lostIt'),
    certs('revoke', 'ab12', '--reason', 'superseded'),
    ...helps.map((args) => run(process.execPath, [MAIN, 'certs', ...args], { timeoutMs: 60_000 })),
  ]);
  helped.forEach((r, i) => {
    t.is(r.code, 0, `${helps[i]!.join(' ')}: ${r.stderr}`);
    t.regex(r.stdout.toString(), new RegExp(`certs ${helps[i]![0] === '--help' ? 'list' : helps[i]![0]}`));
  });
  t.is(badReason!.code, 2);
  t.regex(badReason!.stderr, /needs --reason unspecified\|keyCompromise/);
  t.is(unknown!.code, 1);
  t.regex(unknown!.stderr, /no certificate with serial ab12/);
});
