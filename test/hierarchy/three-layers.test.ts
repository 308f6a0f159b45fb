// Issue 3 end to end: top issues, two middle replicas forward as one RA sharing
// Redis, the bottom forwards with islanded fallback. External clients enroll and
// re-enroll at the bottom (curl + openssl, Node with tls-unique PoP); everything
// issued verifies to the top's root with `openssl verify`; the middle goes away
// and comes back while the bottom keeps running.
import test from 'ava';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { buildName } from '../../src/est/name.js';
import { NETSCAPE_COMMENT } from '../../src/issuer/local-issuer.js';
import { generateKey } from '../../src/pki/keys.js';
import { chainCacheKey } from '../../src/server/gateway.js';
import { SHARED_REDIS_URL, deleteKeys, uniquePrefix } from '../cache/helpers.js';
import { certText, opensslCsr, opensslCsrForKey, run } from '../helpers/cli.js';
import { DEV_AUTH, assertReason, estUrl, issuedCert } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { BOTTOM_RA, type Hierarchy, MIDDLE_RA, caCertsPem, opensslVerify, startHierarchy } from './helpers.js';

const prefix = uniquePrefix();
let h: Hierarchy;
/** Every certificate a client got at the bottom, checked with openssl verify at the end. */
const issued: Array<{ name: string; cert: X509Certificate }> = [];
/** The certificate issued while islanded, and its key. */
let island: { cert: X509Certificate; keyPem: string } | undefined;

test.before(async () => {
  h = await startHierarchy({ redis: { url: SHARED_REDIS_URL, key_prefix: prefix }, bottomUpstream: { cacerts_refresh: 1 } });
});

test.after.always(async () => {
  await h?.close();
  const redis = new Redis(SHARED_REDIS_URL);
  await deleteKeys(redis, prefix);
  await redis.quit();
});

const audit = (gw: { audit(): Array<Record<string, unknown>> }, subject: string) => gw.audit().filter((l) => l.subject === subject);
const topCacertsFetches = () => h.top.audit().filter((l) => l.op === 'cacerts').length;

/** curl as in RFC 7030 appendix style; the body it prints is base64 certs-only. */
async function curl(op: string, b64File: string, auth: string[]): Promise<{ status: number; body: Buffer }> {
  const r = await run('curl', [
    '-sS', '--max-time', '10', '--cacert', h.rootFile, ...auth, '--data-binary', `@${b64File}`, '-H', 'Content-Type: application/pkcs10',
    '-w', '\n%{http_code}', estUrl(h.bottom, op),
  ]);
  const out = r.stdout.toString('latin1');
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: Buffer.from(out.slice(0, i), 'latin1') };
}

test.serial('replica B serves the chain replica A fetched, through Redis: one /cacerts reached the top', async (t) => {
  const [a, b] = h.middles;
  const fromA = await caCertsPem(a!, h.rootPem);
  const fromB = await caCertsPem(b!, h.rootPem);
  t.is(fromA.status, 200);
  t.deepEqual(fromB.certs.map((c) => c.fingerprint256), fromA.certs.map((c) => c.fingerprint256));
  t.deepEqual(fromA.certs.map((c) => c.subject), ['O=EST Test\nCN=top issuing CA', 'O=EST Test\nCN=hierarchy root']);
  const redis = new Redis(SHARED_REDIS_URL);
  t.teardown(() => redis.quit());
  t.truthy(await redis.get(`${prefix}cacerts:${chainCacheKey('default', a!.config.labels.default!)}`), 'the chain is in the shared Redis');
  t.is(topCacertsFetches(), 1, 'A fetched once while starting; B and the bottom never reached the top');
  // replica B's audit: it answered /cacerts itself, from the shared cache
  t.true(b!.audit().some((l) => l.op === 'cacerts' && l.status === 200));
});

test.serial('curl + openssl at the bottom: enroll with Basic, then renew with the issued certificate in TLS, through two hops', async (t) => {
  const csr = await opensslCsr(h.dir, 'curl-device', 'p256', '/CN=curl-device');
  const res = await curl('simpleenroll', csr.b64File, ['-u', 'estuser:estpwd']);
  const cert = issuedCert(t, res);
  t.is(cert.subject, 'CN=curl-device');
  t.is(cert.issuer, 'O=EST Test\nCN=top issuing CA', 'the top signed');
  issued.push({ name: 'curl enroll', cert });
  // the PKCS#7 as openssl reads it
  const p7 = await run('sh', ['-c', `printf '%s' "$0" | openssl base64 -d | openssl pkcs7 -inform DER -print_certs`, res.body.toString('latin1')]);
  t.regex(p7.stdout.toString(), /subject=CN ?= ?curl-device/);

  const certFile = `${h.dir}/curl-device.cert.pem`;
  await writeFile(certFile, cert.toString());
  const renewCsr = await opensslCsrForKey(h.dir, 'curl-renew', csr.keyFile, '/CN=curl-device');
  const renewed = issuedCert(t, await curl('simplereenroll', renewCsr, ['--cert', certFile, '--key', csr.keyFile]));
  t.is(renewed.subject, 'CN=curl-device');
  t.true(renewed.publicKey.equals(cert.publicKey), 'renew keeps the key');
  t.not(renewed.serialNumber, cert.serialNumber);
  issued.push({ name: 'curl renew', cert: renewed });
  for (const gw of [h.bottom, h.middles[0]!, h.top]) t.is(audit(gw, 'CN=curl-device').find((l) => l.op === 'simplereenroll')?.reenroll, 'renew');
});

test.serial('Node https with tls-unique PoP over TLS 1.2 at the bottom; a wrong tls-unique is 400; rekey through two hops', async (t) => {
  const key = await generateKey('p256');
  const csrFor = (password: string) =>
    encodeEstBase64(buildCsr({ subject: buildName([['CN', 'pop-device']]), privateKey: key, challengePassword: password, subjectAltNames: [{ type: 'dns', value: 'pop-device.plant.local' }] }));
  const post = (password: (s: import('node:tls').TLSSocket) => string) =>
    httpsRequest(estUrl(h.bottom, 'simpleenroll'), {
      ca: h.rootPem,
      maxVersion: 'TLSv1.2',
      headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH },
      beforeBody: (s) => csrFor(password(s)),
    });
  assertReason(t, await post(() => 'bm90IHRscy11bmlxdWU='), 400, /tls-unique/);
  const res = await post((s) => s.getFinished()!.toString('base64'));
  t.is(res.socket.getProtocol(), 'TLSv1.2');
  const cert = issuedCert(t, res);
  t.is(cert.subjectAltName, 'DNS:pop-device.plant.local');
  issued.push({ name: 'PoP enroll', cert });
  // the challengePassword cannot match the middle's or the top's tls-unique: the RA vouched for PoP (§3.7)
  for (const gw of [h.middles[0]!, h.top]) t.like(audit(gw, 'CN=pop-device').at(-1), { status: 200, ra: true });

  const rekey = await makeCsr('pop-device', { subjectAltNames: [{ type: 'dns', value: 'pop-device.plant.local' }] });
  const again = await httpsRequest(estUrl(h.bottom, 'simplereenroll'), {
    ca: h.rootPem,
    cert: cert.toString(),
    key: key.export({ format: 'pem', type: 'pkcs8' }) as string,
    body: rekey.b64,
    headers: { 'Content-Type': 'application/pkcs10' },
  });
  const rekeyed = issuedCert(t, again);
  t.false(rekeyed.publicKey.equals(cert.publicKey), 'rekey: the new key');
  t.is(rekeyed.subjectAltName, 'DNS:pop-device.plant.local');
  issued.push({ name: 'PoP rekey', cert: rekeyed });
  for (const gw of [h.bottom, h.middles[0]!, h.top]) t.is(audit(gw, 'CN=pop-device').find((l) => l.op === 'simplereenroll')?.reenroll, 'rekey');
});

test.serial("the top's audit names the middle's RA, the middle's names the bottom's; the bottom's names the client", async (t) => {
  const forwarded = (gw: typeof h.top) => gw.audit().filter((l) => (l.op === 'simpleenroll' || l.op === 'simplereenroll') && l.status === 200);
  const top = forwarded(h.top);
  t.is(top.length, 4);
  t.true(top.every((l) => l.identity === `cert:ra/${MIDDLE_RA}` && l.ra === true), JSON.stringify(top));
  const middle = forwarded(h.middles[0]!);
  t.is(middle.length, 4);
  t.true(middle.every((l) => l.identity === `cert:ra/${BOTTOM_RA}` && l.ra === true), JSON.stringify(middle));
  const bottom = forwarded(h.bottom);
  t.deepEqual(bottom.map((l) => l.identity), ['user:estuser', 'cert:device/curl-device', 'user:estuser', 'cert:device/pop-device']);
  t.true(bottom.every((l) => l.ra === undefined && l.islanded === undefined));
  // every layer's audit names the serial the client got, as openssl prints it
  const serials = issued.map((i) => i.cert.serialNumber.toLowerCase());
  for (const lines of [top, middle, bottom]) t.deepEqual(lines.map((l) => l.serial), serials);
});

test.serial('middle down: the bottom serves /cacerts from its cache and issues islanded; middle back: forwarding resumes', async (t) => {
  const before = await caCertsPem(h.bottom, h.rootPem);
  t.deepEqual(before.certs.map((c) => c.subject.split('\n').at(-1)), ['CN=bottom layer CA', 'CN=top issuing CA', 'CN=hierarchy root']);

  await h.stopMiddles();
  // past cacerts_refresh (1 s): the background refresh fails, the cached chain is served stale
  await new Promise((r) => setTimeout(r, 1_200));
  const during = await caCertsPem(h.bottom, h.rootPem);
  t.is(during.status, 200);
  t.is(during.pem, before.pem);

  const csr = await makeCsr('island-device');
  const started = Date.now();
  const res = await httpsRequest(estUrl(h.bottom, 'simpleenroll'), { ca: h.rootPem, body: csr.b64, headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH } });
  t.true(Date.now() - started < 2_000, 'a refused connection islands at once');
  const cert = issuedCert(t, res);
  t.is(cert.issuer, 'O=EST Test\nCN=bottom layer CA');
  const text = await certText(h.dir, cert.toString());
  t.regex(text, /Netscape Comment:\s*\n\s*issued by .*bottom layer CA.*islanded/);
  t.true(parseCertificate(cert.raw).extensions.some((e) => e.oid === NETSCAPE_COMMENT && !e.critical), 'non-critical 2.16.840.1.113730.1.13');
  issued.push({ name: 'islanded enroll', cert });
  island = { cert, keyPem: csr.keyPem };
  const line = audit(h.bottom, 'CN=island-device').at(-1);
  t.is(line?.islanded, true);
  t.is(line?.status, 200);
  t.true(h.bottom.logs.some((l) => l.msg === 'parent unreachable: issuing locally (islanded)'));

  await h.startMiddles();
  const back = await makeCsr('back-device');
  const res2 = await httpsRequest(estUrl(h.bottom, 'simpleenroll'), { ca: h.rootPem, body: back.b64, headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH } });
  const forwarded = issuedCert(t, res2);
  t.is(forwarded.issuer, 'O=EST Test\nCN=top issuing CA', 'the top signed again');
  t.is(audit(h.bottom, 'CN=back-device').at(-1)?.islanded, undefined);
  t.is(audit(h.top, 'CN=back-device').at(-1)?.identity, `cert:ra/${MIDDLE_RA}`);
  t.false((await certText(h.dir, forwarded.toString())).includes('Netscape Comment'));
  issued.push({ name: 'forwarded after the outage', cert: forwarded });
  // the restarted replicas took the chain from Redis, not from the top
  t.is(topCacertsFetches(), 1);
});

test.serial('once the middle is back, the islanded certificate renews through the parent: the top issues its successor', async (t) => {
  const renew = await makeCsr('island-device', { key: createPrivateKey(island!.keyPem) });
  const res = await httpsRequest(estUrl(h.bottom, 'simplereenroll'), {
    ca: h.rootPem,
    cert: island!.cert.toString(),
    key: island!.keyPem,
    body: renew.b64,
    headers: { 'Content-Type': 'application/pkcs10' },
  });
  const cert = issuedCert(t, res);
  t.is(cert.issuer, 'O=EST Test\nCN=top issuing CA');
  t.true(cert.publicKey.equals(island!.cert.publicKey));
  t.is(audit(h.bottom, 'CN=island-device').at(-1)?.islanded, undefined);
  t.is(audit(h.top, 'CN=island-device').at(-1)?.identity, `cert:ra/${MIDDLE_RA}`);
  issued.push({ name: 'islanded certificate renewed through the parent', cert });
});

test.serial('every certificate a client got verifies to the top root with openssl verify, through the bottom /cacerts chain', async (t) => {
  const chain = await caCertsPem(h.bottom, h.rootPem);
  t.is(issued.length, 7);
  for (const { name, cert } of issued) t.regex(await opensslVerify(h.dir, h.rootFile, chain.pem, cert.toString()), /^\S+: OK$/, name);
});
