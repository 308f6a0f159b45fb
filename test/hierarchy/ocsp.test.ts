// OCSP relayed down the shipped three-layer hierarchy (config/hierarchy): a
// device certificate the top signed, asked about at the bottom's plain-HTTP
// crl_listen by `openssl ocsp`, answered by the top (signed by its issuing CA)
// through the bottom and the middle, good before and revoked after the
// operator's `estgw certs revoke` at the top; the middle down: tryLater.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { toPem } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { buildCertId, buildOcspRequest, parseOcspResponse } from '../../src/est/ocsp.js';
import { deleteKeys } from '../cache/helpers.js';
import { run } from '../helpers/cli.js';
import { issuedCert } from '../helpers/est.js';
import { basic } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { type ShippedHierarchy, post, startShippedHierarchy } from './shipped.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const prefix = `estgw:test:ocsp:${randomBytes(4).toString('hex')}:`;

let h: ShippedHierarchy;
test.before(async () => {
  h = await startShippedHierarchy(prefix, { settings: { bottom: ['server.crl_listen="127.0.0.1:0"'] } });
});
test.after.always(async () => {
  await h?.close();
  const redis = new Redis('redis://127.0.0.1:6379');
  await deleteKeys(redis, prefix);
  await redis.quit();
});

const file = (name: string) => join(h.ws, name);
const bottomOcsp = () => `http://127.0.0.1:${h.bottom.gw.crlPort!}/ocsp`;

async function opensslOcsp(certFile: string) {
  const r = await run('openssl', ['ocsp', '-issuer', file('issuing.pem'), '-cert', certFile, '-url', bottomOcsp(), '-resp_text', '-CAfile', file('root.pem')]);
  return { code: r.code, out: r.stdout.toString() + r.stderr };
}

test.serial('openssl ocsp at the bottom about a device signed at the top: good, then revoked after `estgw certs revoke` at the top; the middle down: tryLater', async (t) => {
  const issuing = h.top.gw.pki.cas.get('issuing')!;
  await writeFile(file('issuing.pem'), toPem('CERTIFICATE', issuing.certDer));
  await writeFile(file('root.pem'), h.rootPem);
  const cert = issuedCert(t, await post(h.bottom, (await makeCsr('ocsp-device')).b64, { auth: basic('estuser', 'estpwd') }));
  t.regex(cert.issuer, /Plant issuing CA/, 'signed at the top, through two RAs');
  await writeFile(file('device.pem'), cert.toString());

  const good = await opensslOcsp(file('device.pem'));
  t.is(good.code, 0, good.out);
  t.regex(good.out, /Response verify OK/);
  t.regex(good.out, /device\.pem: good/);
  t.regex(good.out, /OCSP Nonce:/, 'the nonce went up two layers and came back in the top\'s signed answer');

  const serial = cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
  const revoked = await run(process.execPath, [MAIN, 'certs', 'revoke', serial, '--reason', 'cessationOfOperation', '--config', join(h.ws, 'config', 'hierarchy', 'top.toml'), '--data-dir', h.top.cfg.server.data_dir], {
    env: { ...process.env, ESTGW_DATA_DIR: '' }, timeoutMs: 60_000,
  });
  t.is(revoked.code, 0, revoked.stderr);
  // at once: a request with a nonce is never answered from a cache
  const after = await opensslOcsp(file('device.pem'));
  t.is(after.code, 0, after.out);
  t.regex(after.out, /Response verify OK/);
  t.regex(after.out, /device\.pem: revoked/);
  t.regex(after.out, /Reason: cessationOfOperation/);

  // the middle down: the bottom answers tryLater, not a status it cannot vouch for
  await h.stopMiddle();
  try {
    const down = await opensslOcsp(file('device.pem'));
    t.not(down.code, 0);
    t.regex(down.out, /Responder Error: trylater \(3\)/);
    t.notRegex(down.out, /device\.pem: (good|revoked)/);
    // without a nonce, about a serial not asked before (nothing cached): tryLater too
    const root = parseCertificate(issuing.certDer);
    const fresh = buildOcspRequest([buildCertId('sha256', root.subjectDer, root.spki, Buffer.from('7777', 'hex'))]);
    const res = await fetch(bottomOcsp(), { method: 'POST', body: fresh, headers: { 'Content-Type': 'application/ocsp-request' } });
    t.is(res.status, 200);
    t.deepEqual(parseOcspResponse(Buffer.from(await res.arrayBuffer())), { status: 'tryLater' });
  } finally {
    await h.startMiddle();
  }
});
