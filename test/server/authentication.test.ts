// RFC 7030 §3.2.3 (HTTP Basic, 401 challenge), §3.3.2 (TLS client
// certificates against configured trust anchors) and INTEROP.md (libest's empty
// `Basic Og==` next to a certificate), per label: `auth`, `require_both`, `client_trust`.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { toPem } from '../../src/est/base64.js';
import { type CaMaterial, createSubordinateCa } from '../../src/pki/ca.js';
import { CHALLENGE, DEV_AUTH, assertReason, enroll, get, issuedCert } from '../helpers/est.js';
import { type ClientCert, foreignCa, forgedLink, leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { basic, httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

const WRONG = 'Wr0ng-Secret-xyzzy';
let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let trusted: ClientCert; // issued by the gateway's own root
let plantLeaf: ClientCert; // issued by another label's CA
let bootstrap: ClientCert; // issued by a configured client_trust CA
let rogue: ClientCert; // issued by a CA nobody configured
let bootCa: CaMaterial;
let makerDevice: ClientCert; // issued by a manufacturer's issuing CA (an intermediate), which is the label's anchor

test.before(async () => {
  tmp = await scratchDir('estgw-auth-');
  const boot = await foreignCa(tmp.dir, 'bootstrap');
  const rogueCa = await foreignCa(tmp.dir, 'rogue');
  const makerRoot = await foreignCa(tmp.dir, 'maker-root');
  const makerIssuing = await createSubordinateCa('maker', tmp.path('maker'), makerRoot.ca, { subject: [['CN', 'Maker Issuing CA']], days: 100 });
  const makerFile = tmp.path('maker-issuing.pem');
  await writeFile(makerFile, toPem('CERTIFICATE', makerIssuing.certDer));
  makerDevice = await leafCert(makerIssuing, 'maker-device');
  gw = await startTestGateway({
    users: { estuser: 'estpwd', alice: 'alice-Pa55' },
    cas: { root: {}, plant: { create: 'root', subject: '/CN=plant CA' } },
    labels: {
      default: { client_trust: [boot.pemFile] },
      plant: { ca: 'plant' },
      certonly: { auth: ['cert'], client_trust: [boot.pemFile] },
      basiconly: { auth: ['basic'] },
      both: { require_both: true },
      maker: { client_trust: [makerFile] },
    },
  });
  trusted = await leafCert(gw.gateway.pki.cas.get('root')!, 'trusted-device');
  plantLeaf = await leafCert(gw.gateway.pki.cas.get('plant')!, 'plant-device');
  bootCa = boot.ca;
  bootstrap = await leafCert(boot.ca, 'boot-device');
  rogue = await leafCert(rogueCa.ca, 'rogue-device');
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const withCert = (c: ClientCert) => ({ cert: c.certPem, key: c.keyPem });
const lastAudit = (pred: (l: Record<string, unknown>) => boolean) => gw.audit().filter(pred).at(-1);

for (const op of ['simpleenroll', 'simplereenroll', 'serverkeygen'] as const) {
  test(`RFC 7030 §3.2.3: ${op} without credentials gets 401 and exactly WWW-Authenticate: ${CHALLENGE}`, async (t) => {
    const csr = await makeCsr(`nocreds-${op}`);
    const res = await enroll(gw, csr.b64, { op, auth: null });
    assertReason(t, res, 401);
    t.deepEqual(
      res.rawHeaders.filter(([k]) => k.toLowerCase() === 'www-authenticate'),
      [['WWW-Authenticate', CHALLENGE]],
    );
  });
}

test('a wrong password gets 401 with the challenge', async (t) => {
  const res = await enroll(gw, (await makeCsr('wrongpw')).b64, { auth: basic('estuser', WRONG) });
  assertReason(t, res, 401);
  t.is(res.headers['www-authenticate'], CHALLENGE);
});

test('an unknown user gets 401 with the challenge', async (t) => {
  const res = await enroll(gw, (await makeCsr('nouser')).b64, { auth: basic('mallory', WRONG) });
  assertReason(t, res, 401);
  t.is(res.headers['www-authenticate'], CHALLENGE);
});

for (const [name, header] of [
  ['a Bearer token', 'Bearer abc.def.ghi'],
  ['Basic without a colon', `Basic ${Buffer.from('estuser').toString('base64')}`],
  ['Basic with garbage', 'Basic !!!***'],
  ['Basic with nothing', 'Basic'],
] as const) {
  test(`${name} in Authorization is 401, never 5xx`, async (t) => {
    const res = await enroll(gw, (await makeCsr('badauth')).b64, { auth: header });
    assertReason(t, res, 401);
  });
}

test('a second user has its own password', async (t) => {
  t.is((await enroll(gw, (await makeCsr('alice-1')).b64, { auth: basic('alice', 'alice-Pa55') })).status, 200);
  t.is((await enroll(gw, (await makeCsr('alice-2')).b64, { auth: basic('alice', 'estpwd') })).status, 401);
  t.is(lastAudit((l) => l.subject === 'CN=alice-1')?.identity, 'user:alice');
});

test('libest: `Authorization: Basic Og==` with a trusted client certificate is accepted (the certificate authenticates)', async (t) => {
  const res = await enroll(gw, (await makeCsr('og-cert')).b64, { auth: 'Basic Og==', ...withCert(trusted) });
  issuedCert(t, res);
  t.is(lastAudit((l) => l.subject === 'CN=og-cert')?.identity, 'cert:device/trusted-device');
});

test('`Basic Og==` without a client certificate is 401', async (t) => {
  const res = await enroll(gw, (await makeCsr('og-nocert')).b64, { auth: 'Basic Og==' });
  assertReason(t, res, 401);
  t.is(res.headers['www-authenticate'], CHALLENGE);
});

test('a trusted client certificate alone authenticates (no Authorization header)', async (t) => {
  issuedCert(t, await enroll(gw, (await makeCsr('cert-only')).b64, { auth: null, ...withCert(trusted) }));
});

test('a client certificate from an untrusted CA is 401, with a reason', async (t) => {
  const res = await enroll(gw, (await makeCsr('rogue')).b64, { auth: null, ...withCert(rogue) });
  assertReason(t, res, 401, /certificate/i);
  t.is(res.headers['www-authenticate'], CHALLENGE);
});

test('an untrusted client certificate with `Basic Og==` is 401', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('rogue-og')).b64, { auth: 'Basic Og==', ...withCert(rogue) }), 401);
});

test('a client certificate from a configured client_trust (bootstrap) CA authenticates', async (t) => {
  issuedCert(t, await enroll(gw, (await makeCsr('boot-device')).b64, { auth: null, ...withCert(bootstrap) }));
  t.is(lastAudit((l) => l.subject === 'CN=boot-device')?.identity, 'cert:device/boot-device');
});

// GAP (client_trust anchors): OpenSSL only accepts a chain that ends in a self-signed root, so
// a manufacturer's *issuing* CA (an intermediate) configured as a label's trust anchor never
// authenticates anyone: 401 "(UNABLE_TO_GET_ISSUER_CERT)", with or without the intermediate
// sent in the chain. RFC 5280 §6.1 trust anchors need not be self-signed. Fix
// (src/server/gateway.ts createServer options): `allowPartialTrustChain: true` (Node ≥ 20.18),
// which treats every configured anchor as trusted; chainsTo already matches the anchor itself.
test("a client_trust anchor that is an intermediate (a manufacturer's issuing CA) authenticates its devices", async (t) => {
  issuedCert(t, await enroll(gw, (await makeCsr('maker-device')).b64, { label: 'maker', auth: null, ...withCert(makerDevice) }));
});

test("a label's client_trust does not extend to other labels", async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('boot-on-plant')).b64, { label: 'plant', auth: null, ...withCert(bootstrap) }), 401);
});

test("a certificate from another label's CA does not authenticate on this label, and does on its own", async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('plant-on-default')).b64, { auth: null, ...withCert(plantLeaf) }), 401);
  issuedCert(t, await enroll(gw, (await makeCsr('plant-on-plant')).b64, { label: 'plant', auth: null, ...withCert(plantLeaf) }));
});

// Node's getPeerCertificate(true) walks issuer *names* through whatever the client sent; only
// OpenSSL's own verification (socket.authorized) checks signatures. A label must accept a
// certificate only when the verified path runs through its anchors.
test("a forged link in the client's chain does not borrow another label's CA (own-CA leaf and bootstrap leaf)", async (t) => {
  const root = gw.gateway.pki.cas.get('root')!;
  const plant = gw.gateway.pki.cas.get('plant')!;
  const viaRoot = { cert: trusted.certPem + (await forgedLink(root, plant)), key: trusted.keyPem };
  assertReason(t, await enroll(gw, (await makeCsr('trusted-device')).b64, { label: 'plant', auth: null, ...viaRoot }), 401);
  assertReason(t, await enroll(gw, (await makeCsr('trusted-device')).b64, { label: 'plant', op: 'simplereenroll', auth: null, ...viaRoot }), 401);
  const viaBoot = { cert: bootstrap.certPem + (await forgedLink(bootCa, plant)), key: bootstrap.keyPem };
  assertReason(t, await enroll(gw, (await makeCsr('boot-device')).b64, { label: 'plant', auth: null, ...viaBoot }), 401);
  // with Basic the client is someone, but its certificate still does not renew on plant
  assertReason(t, await enroll(gw, (await makeCsr('trusted-device')).b64, { label: 'plant', op: 'simplereenroll', ...viaRoot }), 403);
});

test('require_both: a trusted certificate and Basic together; either alone is 401', async (t) => {
  const csr = await makeCsr('both-1');
  assertReason(t, await enroll(gw, csr.b64, { label: 'both' }), 401);
  assertReason(t, await enroll(gw, csr.b64, { label: 'both', auth: null, ...withCert(trusted) }), 401);
  assertReason(t, await enroll(gw, csr.b64, { label: 'both', auth: 'Basic Og==', ...withCert(trusted) }), 401);
  assertReason(t, await enroll(gw, csr.b64, { label: 'both', ...withCert(rogue) }), 401);
  issuedCert(t, await enroll(gw, csr.b64, { label: 'both', ...withCert(trusted) }));
  const line = lastAudit((l) => l.label === 'both' && l.status === 200)!;
  t.is(line.identity, 'cert:device/trusted-device');
  t.is(line.user, 'estuser');
});

test('auth = ["cert"]: Basic alone is 401; a certificate (own CA or client_trust) is 200', async (t) => {
  const csr = await makeCsr('certonly-1');
  assertReason(t, await enroll(gw, csr.b64, { label: 'certonly' }), 401);
  issuedCert(t, await enroll(gw, csr.b64, { label: 'certonly', auth: null, ...withCert(trusted) }));
  issuedCert(t, await enroll(gw, csr.b64, { label: 'certonly', auth: 'Basic Og==', ...withCert(bootstrap) }));
});

test('auth = ["basic"]: a certificate alone is 401; Basic is 200', async (t) => {
  const csr = await makeCsr('basiconly-1');
  assertReason(t, await enroll(gw, csr.b64, { label: 'basiconly', auth: null, ...withCert(trusted) }), 401);
  issuedCert(t, await enroll(gw, csr.b64, { label: 'basiconly' }));
});

test('RFC 7030 §4.1.1, §4.5.1: cacerts and csrattrs need no authentication on any label, even with wrong credentials (aziot sends them anyway)', async (t) => {
  for (const label of [undefined, 'plant', 'certonly', 'basiconly', 'both']) {
    const ca = await get(gw, 'cacerts', label);
    t.is(ca.status, 200, `${label} cacerts`);
    const attrs = await get(gw, 'csrattrs', label);
    t.true([200, 204].includes(attrs.status), `${label} csrattrs ${attrs.status}`);
  }
  const wrong = await httpsRequest(`${gw.url}/cacerts`, { ca: gw.caPem, headers: { Authorization: basic('estuser', WRONG) } });
  t.is(wrong.status, 200);
});

test.serial('audit: one line per request with the identity; no password or Authorization value anywhere in the logs', async (t) => {
  await enroll(gw, (await makeCsr('audit-basic')).b64);
  await enroll(gw, (await makeCsr('audit-wrong')).b64, { auth: basic('estuser', WRONG) });
  await enroll(gw, (await makeCsr('audit-cert')).b64, { auth: 'Basic Og==', ...withCert(trusted) });
  const audit = gw.audit();
  const ok = audit.find((l) => l.subject === 'CN=audit-basic')!;
  t.is(ok.identity, 'user:estuser');
  t.is(ok.outcome, 'issued');
  t.is(ok.op, 'simpleenroll');
  t.truthy(ok.serial);
  t.is(audit.find((l) => l.subject === 'CN=audit-cert')?.identity, 'cert:device/trusted-device');
  const refused = audit.filter((l) => l.op === 'simpleenroll' && l.status === 401);
  t.true(refused.length > 0);
  t.true(refused.every((l) => l.outcome === 'rejected' && typeof l.reason === 'string'));
  const everything = JSON.stringify(gw.logs);
  for (const secret of ['estpwd', 'alice-Pa55', WRONG, DEV_AUTH.slice(6), basic('estuser', WRONG).slice(6), basic('alice', 'alice-Pa55').slice(6), 'Og==']) {
    t.false(everything.includes(secret), `logs contain ${secret}`);
  }
  t.false(/authorization/i.test(everything), 'no Authorization header logged');
});
