// `npm start` (`estgw serve` without --config) runs config/standalone.toml, the
// file the README tells people to adapt, plus the tutorial's estuser/estpwd; so
// IoT Edge's Edge CA over EST (/.well-known/est/edgeca) works against it.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { verifyPassword } from '../../src/auth/password.js';
import { applyOverrides, embeddedConfig, loadConfigFile } from '../../src/config/load.js';
import { encodeEstBase64, toPem } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { buildName } from '../../src/est/name.js';
import { generateKey, privateKeyPem } from '../../src/pki/keys.js';
import { type RunningGateway, startGateway } from '../../src/server/gateway.js';
import { scratchDir } from '../helpers/cli.js';
import { DEV_AUTH, assertReason, certsOf, issuedCert } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';

const STANDALONE = join(fileURLToPath(new URL('../../../', import.meta.url)), 'config', 'standalone.toml');

test('the embedded default is config/standalone.toml plus the dev user estuser/estpwd, nothing else', async (t) => {
  const { users, ...embedded } = await embeddedConfig();
  const { users: fileUsers, ...file } = await loadConfigFile(STANDALONE);
  t.deepEqual(embedded, file);
  t.deepEqual(fileUsers, {}, 'the shipped file has no password');
  t.deepEqual(Object.keys(users), ['estuser']);
  t.true(await verifyPassword('estpwd', users.estuser!.password_hash));
  t.truthy(embedded.labels.edgeca, 'with the Edge CA label');
});

test('--set still applies to the embedded default', async (t) => {
  const cfg = await embeddedConfig(['labels.default.cert_lifetime="2h"']);
  t.is(cfg.labels.default!.cert_lifetime, '2h');
  t.truthy(cfg.labels.edgeca);
});

let gw: RunningGateway;
let caPem: string;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-embedded-');
  const cfg = applyOverrides(await embeddedConfig(), { listen: '127.0.0.1:0', dataDir: tmp.dir, workers: 1 });
  gw = await startGateway(cfg, { logger: pino({ level: 'silent' }) });
  caPem = toPem('CERTIFICATE', gw.pki.cas.get('root')!.chain.at(-1)!);
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const post = (path: string, b64: string, o: { auth?: string; cert?: string; key?: string } = {}) =>
  httpsRequest(`${gw.url}/${path}`, {
    ca: caPem,
    body: b64,
    headers: { 'Content-Type': 'application/pkcs10', ...(o.auth ? { Authorization: o.auth } : {}) },
    ...(o.cert ? { cert: o.cert, key: o.key! } : {}),
  });

/** The device's identity certificate, as the tutorial gets it: Basic estuser/estpwd on the unlabelled path. */
async function identity(cn: string): Promise<{ cert: string; key: string }> {
  const key = await generateKey('p256');
  const res = await post('simpleenroll', encodeEstBase64(buildCsr({ subject: buildName([['CN', cn]]), privateKey: key })), { auth: DEV_AUTH });
  return { cert: certsOf(res.body)[0]!.toString(), key: privateKeyPem(key) };
}

/** What aziot-certd sends for [edge_ca] method = "est": CA:TRUE pathLen 0, keyCertSign. */
async function edgeCaCsr(cn: string): Promise<string> {
  const key = await generateKey('p256');
  return encodeEstBase64(buildCsr({ subject: buildName([['CN', cn]]), privateKey: key, basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign', 'digitalSignature'] }));
}

test('IoT Edge: a device\'s Edge CA request at /edgeca, authenticated by its identity certificate, is issued as CA:TRUE pathLen 0', async (t) => {
  const id = await identity('myiotedgedevice');
  for (const cn of ['myiotedgedevice', 'myiotedgedevice Edge CA']) {
    const c = issuedCert(t, await post('edgeca/simpleenroll', await edgeCaCsr(cn), id));
    t.is(c.subject, `CN=${cn}`);
    const f = parseCertificate(c.raw);
    t.deepEqual(f.basicConstraints, { ca: true, pathLen: 0 });
    t.true(f.keyUsage?.includes('keyCertSign'));
    t.is(f.extKeyUsage, undefined, 'ext_key_usage = [] on the edgeca label');
    t.true(c.checkIssued(new X509Certificate(caPem)), 'issued by the root of the embedded default');
  }
});

test('IoT Edge: the Edge CA is named after the device that asks (another name 403), and needs its certificate (Basic alone 401)', async (t) => {
  const id = await identity('edge-device-7');
  assertReason(t, await post('edgeca/simpleenroll', await edgeCaCsr('edge-device-8'), id), 403);
  const basicOnly = await post('edgeca/simpleenroll', await edgeCaCsr('edge-device-7'), { auth: DEV_AUTH });
  t.is(basicOnly.status, 401, basicOnly.body.toString());
});
