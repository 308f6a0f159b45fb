// est-gateway as an RA under a libest estserver top (opt-in, LIBEST_BIN): the
// gateway gets its RA certificate from estserver over EST, forwards a device's
// enrollment and renewal (libest's estclient as the device), and refuses what the
// top signs differently from what it approved. libest's example CA copies no
// extensions (copy_extensions = none): a CSR with subjectAltNames comes back
// without them, so the gateway answers 502.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { eventually } from '../cache/helpers.js';
import { CLI_ENTRY } from '../client/support/client-cli.js';
import { freePort } from '../client/support/net.js';
import { run, scratchDir } from '../helpers/cli.js';
import { type TestGateway, crlIndex, startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { LIBEST_BIN, type Peer, copyExampleCa, deviceKey, estclient, explainSkip, failureOf, libest, startEstserver } from './libest.js';

explainSkip('est-gateway forwarding to a libest estserver');

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let top: Peer;
let topRoot: string;
let gw: TestGateway;
let key: string;
const estgw = (args: string[]) => run(process.execPath, [CLI_ENTRY, ...args], { timeoutMs: 60_000 });

test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-top-');
  const ca = await copyExampleCa(tmp.dir);
  topRoot = join(ca, 'estCA', 'cacert.crt');
  top = await startEstserver(ca, await freePort());
  const topUrl = `https://127.0.0.1:${top.port}/.well-known/est`;
  // the gateway's RA certificate, from the top over EST with the tutorial's credentials
  const ra = await estgw(['enroll', '--url', topUrl, '--trust', topRoot, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'plant-gw-ra', '--out', tmp.path('ra.pem')]);
  if (ra.code !== 0) throw new Error(`RA certificate from estserver: ${ra.stderr}\n${top.log().slice(-2000)}`);
  await writeFile(tmp.path('up.pw'), 'estpwd\n');
  gw = await startTestGateway({
    labels: {
      default: {
        mode: 'forward',
        upstream: { url: topUrl, trust: topRoot, cert: tmp.path('ra.pem'), key: tmp.path('ra.key.pem'), username: 'estuser', password_file: tmp.path('up.pw'), crl_refresh: 1 },
      },
    },
  });
  key = await deviceKey(tmp.path('device.key.pem'));
});
test.after.always(async () => {
  await gw?.close();
  await top?.stop();
  await tmp?.remove();
});

libest('the RA certificate libest\'s example CA issues carries no extended key usage (no id-kp-cmcRA)', async (t) => {
  const ra = new X509Certificate(await readFile(tmp.path('ra.pem')));
  t.is(ra.issuer, 'CN=estExampleCA');
  t.is(parseCertificate(ra.raw).extKeyUsage, undefined, 'no extendedKeyUsage extension');
});

libest('a device\'s estclient -g through the gateway gets the top\'s root', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('g'), ['-g']);
  t.is(failureOf(r), undefined, r.output);
  const certs = parseCertsOnly(decodeEstBase64(Buffer.from(await r.file('cacert-0-0.pkcs7')))).map((d) => new X509Certificate(d));
  t.deepEqual(certs.map((c) => c.subject), ['CN=estExampleCA']);
});

let deviceCert: string;
libest('estclient -e through the gateway: the top signs (a CSR without subjectAltName)', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('e'), ['-e', '-u', 'estuser', '-h', 'estpwd', '-x', key, '--common-name', 'libest-top-device', '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${top.log().slice(-2000)}`);
  deviceCert = tmp.path('e/cert-0-0.pem');
  const cert = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(cert.subject, 'CN=libest-top-device');
  t.is(cert.issuer, 'CN=estExampleCA');
  t.true(cert.verify(new X509Certificate(await readFile(topRoot)).publicKey));
  const line = gw.audit().filter((l) => l.op === 'simpleenroll' && l.status === 200).at(-1);
  t.regex(String(line?.issuer), /^parent 127\.0\.0\.1:/);
});

libest('estclient -r with the top\'s certificate through the gateway: renewed by the top', async (t) => {
  const r = await estclient(gw.port, gw.caFile, tmp.path('r'), ['-r', '-c', deviceCert, '-k', key, '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${top.log().slice(-2000)}`);
  const before = new X509Certificate(await readFile(deviceCert));
  const after = new X509Certificate(await r.file('cert-0-0.pem'));
  t.is(after.subject, before.subject);
  t.is(after.issuer, 'CN=estExampleCA');
  t.not(after.serialNumber, before.serialNumber);
});

// estserver has no /crl/ (404): "no CRLs", not an outage; the gateway's /crl/
// serves its own CA's CRL only, and renewal goes on.
libest('the gateway asks estserver for /crl/ (404): its own /crl/ serves its local CA only, no outage is logged, /readyz is 200, and the device still renews', async (t) => {
  t.true(await eventually(() => /"GET \/crl\/ HTTP\/1\.1"/.test(top.log()), 15_000), 'the gateway asked the top for its CRLs');
  const index = await crlIndex(gw);
  t.deepEqual(index.map((e) => e.name), gw.gateway.ledger!.caNames());
  t.false(index.some((e) => /estExampleCA/.test(e.issuer)));
  t.deepEqual(gw.logs.filter((l) => /cannot fetch the CRLs/.test(String(l.msg))), []);
  const ready = await httpsRequest(`${new URL(gw.url).origin}/readyz`, { ca: gw.caPem });
  t.is(ready.status, 200, ready.body.toString());
  const r = await estclient(gw.port, gw.caFile, tmp.path('r2'), ['-r', '-c', tmp.path('r/cert-0-0.pem'), '-k', key, '--pem-output']);
  t.is(failureOf(r), undefined, `${r.output}\n${top.log().slice(-2000)}`);
  t.is(new X509Certificate(await r.file('cert-0-0.pem')).issuer, 'CN=estExampleCA');
});

libest('a CSR with a subjectAltName: the top drops it (copy_extensions = none), so the gateway answers 502 and hands out nothing', async (t) => {
  const out = tmp.path('san.pem');
  const r = await estgw(['enroll', '--url', gw.url, '--trust', gw.caFile, '--user', 'estuser', '--pass', 'estpwd', '--cn', 'san-device', '--dns', 'san-device.plant.local', '--out', out]);
  t.is(r.code, 1);
  t.regex(r.stderr, /502 Bad Gateway: parent 127\.0\.0\.1:\d+ issued other subjectAltNames than approved/);
  await t.throwsAsync(readFile(out));
});
