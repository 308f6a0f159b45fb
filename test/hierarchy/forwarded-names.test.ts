// A forwarding layer passes on only what it approved: the parent's certificate
// must carry exactly the CSR's subject and subjectAltNames and its public key
// (for serverkeygen: the key sent along). A parent that is not est-gateway may
// answer otherwise; the device then gets 502, and fallback does not turn that
// into an islanded certificate. The fake parent answers by the CSR's CN.
import test from 'ava';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeEstBase64, encodeEstBase64, toPem } from '../../src/est/base64.js';
import { type Csr, parseCsr } from '../../src/est/csr.js';
import { oid, printable, seq, setOf } from '../../src/est/der.js';
import { buildServerKeygenBody } from '../../src/est/multipart.js';
import { buildGeneralNames, buildName, commonNames } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { buildCertsOnly } from '../../src/est/pkcs7.js';
import { describeSpki } from '../../src/est/spki.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { Signer } from '../../src/pki/issuance.js';
import { generateKey, privateKeyDer, spkiDer } from '../../src/pki/keys.js';
import { leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { CERTS_ONLY, assertReason, enroll, issuedCert, serverKeygenAnswer } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';

let scratch: Awaited<ReturnType<typeof scratchDir>>;
let parentCa: CaMaterial;
let parent: Server;
let gw: TestGateway;
/** CN of every enrollment request that reached the parent. */
const enrollsSeen: string[] = [];

const SAN = [{ type: 'dns' as const, value: 'dev.plant.example' }, { type: 'ip' as const, value: '10.1.2.3' }];
const sanOf = (csr: Csr) => csr.extensions.find((e) => e.oid === OID.subjectAltName)?.value;

/** How the fake parent departs from the request, by the CN's first word. */
async function certFor(csr: Csr, spki: Buffer): Promise<Buffer> {
  const cn = commonNames(csr.subject)[0] ?? '';
  const how = cn.split('-')[0];
  let subjectDer = csr.subjectDer;
  let san = sanOf(csr);
  if (how === 'othercn') subjectDer = buildName([['CN', 'plant-admin']]);
  if (how === 'extraattr') subjectDer = buildName([['O', 'Operators'], ['CN', cn]]);
  if (how === 'printable') subjectDer = seq(setOf(seq(oid(OID.commonName), printable(cn)))); // same name, other string type
  if (how === 'extrasan') san = buildGeneralNames([...csr.subjectAltNames, { type: 'dns', value: 'historian.plant.example' }]);
  if (how === 'droppedsan') san = undefined;
  if (how === 'reordered') san = buildGeneralNames([...csr.subjectAltNames].reverse());
  if (how === 'otherkey' || how === 'mismatch') spki = spkiDer(await generateKey('p256'));
  return new Signer(parentCa).issue({
    subjectDer, spki, key: describeSpki(spki), validityDays: 1, extKeyUsage: [OID.clientAuth], ...(san ? { subjectAltNameDer: san } : {}),
  }).der;
}

test.before(async () => {
  scratch = await scratchDir('estgw-fwd-names-');
  parentCa = await createRootCa('parent', scratch.path('parent-ca'), { subject: [['CN', 'foreign parent CA']], days: 30 });
  const trust = scratch.path('parent-trust.pem');
  await writeFile(trust, toPem('CERTIFICATE', parentCa.certDer));
  const tls = await leafCert(parentCa, 'localhost', { eku: [OID.serverAuth], san: [{ type: 'ip', value: '127.0.0.1' }] });
  const ra = await leafCert(parentCa, 'names-ra', { eku: [OID.cmcRA, OID.clientAuth] });
  const raFiles = { cert: scratch.path('ra.cert.pem'), key: scratch.path('ra.key.pem') };
  await writeFile(raFiles.cert, ra.certPem);
  await writeFile(raFiles.key, ra.keyPem, { mode: 0o600 });

  parent = createServer({ cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const reply = (type: string, body: string | Buffer) => {
        res.writeHead(200, { 'Content-Type': type, 'Content-Transfer-Encoding': 'base64', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.url!.endsWith('/cacerts')) return reply('application/pkcs7-mime', encodeEstBase64(buildCertsOnly([parentCa.certDer])));
      // no CRLs here, as at a libest parent
      if (req.url!.startsWith('/crl/')) return void res.writeHead(404).end();
      const csr = parseCsr(decodeEstBase64(Buffer.concat(chunks)));
      enrollsSeen.push(commonNames(csr.subject)[0] ?? '');
      if (req.url!.endsWith('/serverkeygen')) {
        const key = await generateKey('p256');
        return reply('multipart/mixed; boundary=est-gateway-boundary', buildServerKeygenBody(privateKeyDer(key), buildCertsOnly([await certFor(csr, spkiDer(key))])));
      }
      reply(CERTS_ONLY, encodeEstBase64(buildCertsOnly([await certFor(csr, csr.spki)])));
    });
  });
  parent.listen(0, '127.0.0.1');
  await once(parent, 'listening');
  const upstream = { url: `https://127.0.0.1:${(parent.address() as AddressInfo).port}/.well-known/est`, trust, ...raFiles, timeout: 5, connect_timeout: 2 };
  gw = await startTestGateway({
    labels: {
      default: { mode: 'forward', upstream, forward_serverkeygen: true },
      fb: { mode: 'forward', fallback: 'issue', ca: 'root', upstream },
    },
  });
});

test.after.always(async () => {
  await gw?.close();
  parent?.closeAllConnections();
  parent?.close();
  await scratch?.remove();
});

const enrollAs = async (cn: string, o: { label?: string; op?: 'simpleenroll' | 'serverkeygen' } = {}) =>
  enroll(gw, (await makeCsr(cn, { subjectAltNames: SAN })).b64, o);

test('a faithful answer still passes: 200 with the parent\'s certificate, also when it encodes the same names differently', async (t) => {
  for (const cn of ['right-1', 'printable-1', 'reordered-1']) {
    const cert = issuedCert(t, await enrollAs(cn));
    t.is(cert.issuer, 'CN=foreign parent CA');
    t.is(cert.subject, `CN=${cn}`);
  }
});

for (const [cn, why] of [
  ['othercn-1', /subject/],
  ['extraattr-1', /subject/],
  ['extrasan-1', /subjectAltName/],
  ['droppedsan-1', /subjectAltName/],
  ['otherkey-1', /key/],
] as const) {
  test(`a parent that issues other names or another key than approved (${cn}): 502 text/plain at the device`, async (t) => {
    assertReason(t, await enrollAs(cn), 502, why);
    t.deepEqual(enrollsSeen.filter((c) => c === cn), [cn], 'the parent was asked (and answered) once: no retry, no second opinion');
  });
}

test('with fallback = "issue", a wrong answer is still 502: a parent that answered wrongly is not an unreachable one', async (t) => {
  const res = await enrollAs('othercn-fb', { label: 'fb' });
  assertReason(t, res, 502, /subject/);
  const line = gw.audit().filter((l) => l.label === 'fb').at(-1);
  t.like(line, { status: 502 });
  t.is(line?.islanded, undefined);
});

test('serverkeygen: the returned key must be the returned certificate\'s, and the names the CSR\'s', async (t) => {
  const ok = await enrollAs('right-skg', { op: 'serverkeygen' });
  t.is(ok.status, 200, ok.body.toString());
  t.is(serverKeygenAnswer(t, ok.headers['content-type']!, ok.body).cert.subject, 'CN=right-skg');
  assertReason(t, await enrollAs('mismatch-skg', { op: 'serverkeygen' }), 502, /key/);
  assertReason(t, await enrollAs('extrasan-skg', { op: 'serverkeygen' }), 502, /subjectAltName/);
  assertReason(t, await enrollAs('othercn-skg', { op: 'serverkeygen' }), 502, /subject/);
});
