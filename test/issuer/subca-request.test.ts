import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { requestSubordinateCa } from '../../src/issuer/subca-request.js';
import { Signer } from '../../src/pki/issuance.js';
import { loadCa } from '../../src/pki/ca.js';
import { buildName } from '../../src/est/name.js';
import { describeSpki } from '../../src/est/spki.js';
import { generateKey, spkiDer } from '../../src/pki/keys.js';
import { OID } from '../../src/est/oids.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { run } from '../helpers/cli.js';

let parent: TestGateway;
let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-subca-'));
  parent = await startTestGateway({
    users: { estuser: 'estpwd', bottom: 'bottom-pw' },
    cas: { root: { path_len: 2 }, issuing: { create: 'subordinate', parent: 'root', path_len: 1 } },
    labels: {
      default: { ca: 'issuing' },
      subca: { ca: 'issuing', grants: [{ identity: 'user:bottom', common_names: ['bottom *'], subject_attributes: ['O'], allow_ca: true, max_path_len: 0 }] },
    },
  });
  await writeFile(join(dir, 'parent-root.pem'), parent.caPem);
  await writeFile(join(dir, 'pw'), 'bottom-pw\n');
});
test.after.always(async () => {
  await parent?.close();
  await rm(dir, { recursive: true, force: true });
});

const caCfg = (subject: string) =>
  validateConfig({
    cas: {
      root: { create: 'request', subject, request: { url: parent.url, label: 'subca', trust: join(dir, 'parent-root.pem'), username: 'bottom', password_file: join(dir, 'pw') } },
    },
  }).cas.root!;

test('a layer obtains its sub-CA from the parent: CA:TRUE pathLen 0, chain up to the root, key 0600', async (t) => {
  const ca = await requestSubordinateCa('bottom', join(dir, 'bottom'), caCfg('/O=Plant/CN=bottom layer CA'));
  t.deepEqual(ca.fields.basicConstraints, { ca: true, pathLen: 0 });
  t.is(ca.chain.length, 3);
  t.true(new X509Certificate(ca.chain[2]!).verify(new X509Certificate(parent.caPem).publicKey));
  t.is((await stat(join(dir, 'bottom', 'ca.key.pem'))).mode & 0o777, 0o600);
  // it issues certificates that chain to the parent's root
  const reloaded = await loadCa('bottom', join(dir, 'bottom'));
  const key = await generateKey('p256');
  const leaf = new Signer(reloaded).issue({ subjectDer: buildName([['CN', 'device']]), spki: spkiDer(key), key: describeSpki(spkiDer(key)), validityDays: 1, extKeyUsage: [OID.clientAuth] });
  t.deepEqual(parseCertificate(leaf.der).issuerDer, reloaded.fields.subjectDer);
  const audit = parent.audit().find((l) => l.op === 'simpleenroll' && l.label === 'subca' && l.status === 200);
  t.is(audit?.identity, 'user:bottom');
});

test('the parent refuses a sub-CA name its grant does not cover, with its reason', async (t) => {
  await t.throwsAsync(requestSubordinateCa('other', join(dir, 'other'), caCfg('/CN=somebody else')), { message: /CN "somebody else" is not allowed/ });
  await t.throwsAsync(stat(join(dir, 'other', 'ca.key.pem')));
});

test('estgw ca request-subca: obtains, then keeps, then replaces with --force while keeping the old one', async (t) => {
  const cfgFile = join(dir, 'bottom.toml');
  await writeFile(
    cfgFile,
    `[server]\ndata_dir = "state"\n[cas.root]\ncreate = "request"\nsubject = "/O=Plant/CN=bottom cli CA"\n` +
      `[cas.root.request]\nurl = "${parent.url}"\nlabel = "subca"\ntrust = "parent-root.pem"\nusername = "bottom"\npassword_file = "pw"\n`,
  );
  const first = await run('node', ['dist/src/cli/main.js', 'ca', 'request-subca', '--config', cfgFile]);
  t.regex(first.stdout.toString(), /obtained CA "root"/);
  const again = await run('node', ['dist/src/cli/main.js', 'ca', 'request-subca', '--config', cfgFile]);
  t.regex(again.stdout.toString(), /exists/);
  const forced = await run('node', ['dist/src/cli/main.js', 'ca', 'request-subca', '--config', cfgFile, '--force']);
  t.regex(forced.stdout.toString(), /obtained CA "root"/);
  const entries = await readdir(join(dir, 'state', 'ca'));
  t.true(entries.includes('root'));
  t.true(entries.some((e) => e.startsWith('root.replaced-')));
});

test('serve reloads its CAs from disk on SIGHUP: a sub-CA replaced with request-subca --force is served at once, beside the old one', async (t) => {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('../cache/helpers.js');
  const { httpsRequest } = await import('../helpers/http.js');
  const { decodeEstBase64 } = await import('../../src/est/base64.js');
  const { parseCertsOnly } = await import('../../src/est/pkcs7.js');
  const cfgFile = join(dir, 'hup.toml');
  await writeFile(
    cfgFile,
    `[server]\ndata_dir = "hup-state"\nworkers = 2\n[cas.root]\ncreate = "request"\nsubject = "/O=Plant/CN=bottom hup CA"\n` +
      `[cas.root.request]\nurl = "${parent.url}"\nlabel = "subca"\ntrust = "parent-root.pem"\nusername = "bottom"\npassword_file = "pw"\n`,
  );
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'serve', '--config', cfgFile, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REDIS_URL: '' } });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const until = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    if (!cond()) throw new Error(`${what}\n${err}\n${out}`);
  };
  await until(() => /fingerprint/.test(err), 'serve did not start');
  const trust = (await readFile(join(dir, 'parent-root.pem'), 'utf8'));
  const cacerts = async () => parseCertsOnly(decodeEstBase64((await httpsRequest(`https://127.0.0.1:${port}/.well-known/est/cacerts`, { ca: trust })).body));
  const gen1 = (await cacerts())[0]!;

  const forced = await run('node', ['dist/src/cli/main.js', 'ca', 'request-subca', '--config', cfgFile, '--force']);
  t.is(forced.code, 0, forced.stderr);
  t.true((await cacerts())[0]!.equals(gen1), 'nothing changes before the signal');
  child.kill('SIGHUP');
  await until(() => (out.match(/PKI reloaded/g) ?? []).length >= 2, 'both workers reload');
  const after = await cacerts();
  t.false(after[0]!.equals(gen1), 'the new sub-CA leads the chain');
  t.true(after.some((c) => c.equals(gen1)), 'the replaced one is still served');
  t.is(child.exitCode, null, 'SIGHUP does not stop the gateway');
});

test('a renewed sub-CA is issued from at once; certificates of the replaced one still renew', async (t) => {
  const { replaceSubordinateCa } = await import('../../src/issuer/subca-request.js');
  const { preparePki } = await import('../../src/server/pki-setup.js');
  const { httpsRequest, basic } = await import('../helpers/http.js');
  const { makeCsr } = await import('../helpers/pki.js');
  const { decodeEstBase64, toPem } = await import('../../src/est/base64.js');
  const { parseCertsOnly } = await import('../../src/est/pkcs7.js');
  const data = join(dir, 'renewing');
  const subject = '/O=Plant/CN=bottom renewing CA';
  const request = { url: parent.url, label: 'subca', trust: join(dir, 'parent-root.pem'), username: 'bottom', password_file: join(dir, 'pw') };
  await requestSubordinateCa('bottom', join(data, 'ca', 'bottom'), caCfg(subject));
  const gw = await startTestGateway({ dataDir: data, cas: { root: {}, bottom: { create: 'request', subject, request } }, server: { tls_issuer: 'bottom' }, labels: { default: { ca: 'bottom' } } });
  t.teardown(() => gw.close());
  const enroll = async (path: string, b64: string, o: { cert?: string; key?: string } = {}) => {
    const res = await httpsRequest(`${gw.url}/${path}`, { ca: gw.caPem, body: b64, headers: { 'Content-Type': 'application/pkcs10', ...(o.cert ? {} : { Authorization: basic('estuser', 'estpwd') }) }, ...o });
    t.is(res.status, 200, res.body.toString());
    return new X509Certificate(parseCertsOnly(decodeEstBase64(res.body))[0]!);
  };
  const csr = await makeCsr('device-r');
  const before = await enroll('simpleenroll', csr.b64);
  const gen1 = gw.gateway.pki.cas.get('bottom')!;
  t.true(before.checkIssued(gen1.cert));

  await replaceSubordinateCa('bottom', join(data, 'ca', 'bottom'), caCfg(subject));
  await gw.gateway.reload(await preparePki(gw.config, { create: false }));
  const gen2 = gw.gateway.pki.cas.get('bottom')!;
  t.false(gen2.certDer.equals(gen1.certDer));
  t.false(gen2.key.export({ format: 'der', type: 'pkcs8' }).equals(gen1.key.export({ format: 'der', type: 'pkcs8' })));
  const after = await enroll('simpleenroll', (await makeCsr('device-s')).b64);
  t.true(after.checkIssued(gen2.cert));
  // the device holding a gen-1 certificate renews with it
  const renewed = await enroll('simplereenroll', csr.b64, { cert: toPem('CERTIFICATE', before.raw), key: csr.keyPem });
  t.true(renewed.checkIssued(gen2.cert));
  // the gateway's TLS certificate, issued by the sub-CA, moves to the new generation (it would expire with the old one)
  const served = (await httpsRequest(`${gw.url}/cacerts`, { ca: gw.caPem })).socket.getPeerX509Certificate()!;
  t.true(served.checkIssued(gen2.cert) && served.verify(gen2.cert.publicKey), `TLS certificate issued by ${served.issuer}`);
  // /cacerts carries both generations, so both kinds of certificate chain to the root
  const chain = parseCertsOnly(decodeEstBase64((await httpsRequest(`${gw.url}/cacerts`, { ca: gw.caPem })).body));
  t.true(chain.some((c) => c.equals(gen1.certDer)));
  t.true(chain.some((c) => c.equals(gen2.certDer)));
});
