// Issue 11, "revocation of an islanded certificate happens at the layer that
// issued it": while the middle is down the bottom signs from its own sub-CA, so
// the record and the CRL are the bottom's. Revoked there with `estgw certs
// revoke`, the bottom's CRL lists it and the bottom refuses its renewal and its
// client-certificate authentication, also once the middle is back and it would
// otherwise forward. The top never signed it: revoking it there is a clear error.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { toPem } from '../../src/est/base64.js';
import { SHARED_REDIS_URL, deleteKeys, uniquePrefix } from '../cache/helpers.js';
import { openssl, run } from '../helpers/cli.js';
import { DEV_AUTH, assertReason, estUrl, issuedCert } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { type Hierarchy, startHierarchy } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const prefix = uniquePrefix();
let h: Hierarchy;

test.before(async () => {
  h = await startHierarchy({ redis: { url: SHARED_REDIS_URL, key_prefix: prefix } });
});
test.after.always(async () => {
  await h?.close();
  const redis = new Redis(SHARED_REDIS_URL);
  await deleteKeys(redis, prefix);
  await redis.quit();
});

const serialOf = (x: X509Certificate) => x.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
/** `estgw certs ARGS` on a layer's data directory, as its operator runs it. */
const certs = (dataDir: string, args: string[], set: string[] = []) =>
  run(process.execPath, [MAIN, 'certs', ...args, '--data-dir', dataDir, ...set.flatMap((s) => ['--set', s])], { env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });

test('an islanded certificate is revoked at the bottom, which issued it: its CRL lists it, renewal and authentication are refused; the top has no record of it', async (t) => {
  await h.stopMiddles();
  const csr = await makeCsr('islanded-rev');
  const cert = issuedCert(t, await httpsRequest(estUrl(h.bottom, 'simpleenroll'), { ca: h.rootPem, body: csr.b64, headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH } }));
  t.is(cert.issuer, 'O=EST Test\nCN=bottom layer CA');
  const serial = serialOf(cert);
  t.like(h.bottom.gateway.ledger!.store.get('bottom', serial), { islanded: true, ca: 'bottom' });
  await h.startMiddles();

  // the top signed nothing with that serial: a clear refusal, and nothing changes there
  const atTop = await certs(h.top.dataDir, ['revoke', serial, '--reason', 'keyCompromise'], ['cas.issuing.create=subordinate', 'cas.issuing.parent=root']);
  t.is(atTop.code, 1);
  t.is(atTop.stderr.trim(), `estgw: no certificate with serial ${serial} on record`);
  // the middle signs nothing: it has no ledger at all
  const atMiddle = await certs(h.middles[0]!.dataDir, ['revoke', serial, '--reason', 'keyCompromise'], ['cas={}']);
  t.is(atMiddle.code, 1);
  t.regex(atMiddle.stderr, /^estgw: no issuance ledger in .*: the gateway creates it on its first start with a local CA/);

  const atBottom = await certs(h.bottom.dataDir, ['revoke', serial, '--reason', 'keyCompromise', '--by', 'bottom-operator'], ['cas={}', 'cas.bottom.create="none"', `cas.bottom.dir="${h.bottom.config.cas.bottom!.dir}"`]);
  t.is(atBottom.code, 0, atBottom.stderr);

  // the bottom's CRL, signed by the bottom's sub-CA, lists it with its reason
  const crl = await httpsRequest(`https://127.0.0.1:${h.bottom.port}/crl/bottom.crl`, { ca: h.rootPem });
  t.is(crl.status, 200);
  const text = await openssl(['crl', '-inform', 'DER', '-text', '-noout'], { input: crl.body });
  t.regex(text, /Issuer: O ?= ?EST Test, CN ?= ?bottom layer CA/);
  t.regex(text, new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*?Key Compromise`));
  // and openssl, given that CRL, rejects the certificate
  const files = { crl: `${h.dir}/bottom-crl.pem`, cert: `${h.dir}/islanded.pem`, chain: `${h.dir}/bottom-chain.pem` };
  await writeFile(files.crl, toPem('X509 CRL', crl.body));
  await writeFile(files.cert, cert.toString());
  await writeFile(files.chain, h.bottomCa.chain.slice(0, -1).map((d) => toPem('CERTIFICATE', d)).join(''));
  const verify = await run('openssl', ['verify', '-crl_check', '-CAfile', h.rootFile, '-untrusted', files.chain, '-CRLfile', files.crl, files.cert]);
  t.not(verify.code, 0);
  t.regex(verify.stdout.toString() + verify.stderr, /certificate revoked/);

  // with the middle back the bottom would forward the renewal to the top: it refuses first, with the reason
  const tls = { cert: cert.toString(), key: csr.keyPem };
  const renew = await httpsRequest(estUrl(h.bottom, 'simplereenroll'), { ca: h.rootPem, ...tls, body: (await makeCsr('islanded-rev', { key: csr.key })).b64, headers: { 'Content-Type': 'application/pkcs10' } });
  assertReason(t, renew, 403, new RegExp(`\\(serial ${serial}\\) was revoked on \\S+: keyCompromise`));
  const auth = await httpsRequest(estUrl(h.bottom, 'simpleenroll'), { ca: h.rootPem, ...tls, body: (await makeCsr('another-name')).b64, headers: { 'Content-Type': 'application/pkcs10' } });
  assertReason(t, auth, 403, /client certificate .*revoked.*keyCompromise/);
  t.false(h.top.audit().some((l) => l.subject === 'CN=islanded-rev'), 'nothing reached the top');
});
