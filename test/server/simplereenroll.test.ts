// RFC 7030 §4.2.2: simplereenroll renews the certificate the client presents
// in TLS; the CSR's Subject and SubjectAltName must equal that certificate's.
// Same key = renew, new key = rekey. The certificate must come from this label's CA.
import test from 'ava';
import { type KeyObject, X509Certificate, generateKeyPair } from 'node:crypto';
import { foreignCa, leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { type EnrollOptions, assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { type TestCsr, makeCsr } from '../helpers/pki.js';
import type { GeneralName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let boot: Awaited<ReturnType<typeof foreignCa>>;
test.before(async () => {
  tmp = await scratchDir('estgw-reenroll-');
  boot = await foreignCa(tmp.dir, 'bootstrap');
  gw = await startTestGateway({
    cas: { root: {}, plant: { create: 'root', subject: '/CN=plant CA' }, line: { create: 'subordinate', parent: 'root', subject: '/CN=line sub CA' } },
    labels: {
      default: { client_trust: [boot.pemFile] },
      plant: { ca: 'plant' },
      line: { ca: 'line' },
      narrow: { grants: [{ identity: 'cert:narrow-ra', common_names: ['dev-*'] }, { identity: 'user:estuser', common_names: ['*'] }] },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

interface Enrolled {
  csr: TestCsr;
  cert: X509Certificate;
  tls: { cert: string; key: string };
}

/** simpleenroll with Basic, then the issued certificate and its key as a TLS client identity. */
async function enrolled(t: Parameters<typeof issuedCert>[0], cn: string, san?: GeneralName[], label?: string): Promise<Enrolled> {
  const csr = await makeCsr(cn, san ? { subjectAltNames: san } : {});
  const cert = issuedCert(t, await enroll(gw, csr.b64, label ? { label } : {}));
  return { csr, cert, tls: { cert: cert.toString(), key: csr.keyPem } };
}

const reenroll = (b64: string, tls: { cert: string; key: string } | undefined, o: EnrollOptions = {}) =>
  enroll(gw, b64, { op: 'simplereenroll', auth: null, ...(tls ?? {}), ...o });

const san = (...dns: string[]): GeneralName[] => dns.map((value) => ({ type: 'dns', value }));
const reenrollAudit = (cn: string) => gw.audit().filter((l) => l.op === 'simplereenroll' && l.subject === `CN=${cn}`);

test('renew: same key, same names, certificate in TLS and no Basic → 200; the new certificate keeps subject and SAN', async (t) => {
  const e = await enrolled(t, 'renew-1', san('renew-1.plant.example', 'alias.plant.example'));
  const again = await makeCsr('renew-1', { key: e.csr.key, subjectAltNames: san('renew-1.plant.example', 'alias.plant.example') });
  const res = await reenroll(again.b64, e.tls);
  const renewed = issuedCert(t, res);
  t.is(renewed.subject, e.cert.subject);
  t.is(renewed.subjectAltName, e.cert.subjectAltName);
  t.true(renewed.publicKey.equals(e.cert.publicKey));
  t.not(renewed.serialNumber, e.cert.serialNumber);
  const line = reenrollAudit('renew-1').at(-1)!;
  t.is(line.reenroll, 'renew');
  t.is(line.identity, 'cert:device/renew-1');
  t.is(line.outcome, 'issued');
});

test('rekey: a new key with the same names → 200, audited as rekey', async (t) => {
  const e = await enrolled(t, 'rekey-1', san('rekey-1.plant.example'));
  const fresh = await makeCsr('rekey-1', { keySpec: 'p384', subjectAltNames: san('rekey-1.plant.example') });
  const renewed = issuedCert(t, await reenroll(fresh.b64, e.tls));
  t.false(renewed.publicKey.equals(e.cert.publicKey));
  t.is(renewed.subjectAltName, 'DNS:rekey-1.plant.example');
  t.is(reenrollAudit('rekey-1').at(-1)?.reenroll, 'rekey');
});

test('libest: reenroll with `Authorization: Basic Og==` and the certificate → 200', async (t) => {
  const e = await enrolled(t, 'og-renew');
  issuedCert(t, await reenroll((await makeCsr('og-renew', { key: e.csr.key })).b64, e.tls, { auth: 'Basic Og==' }));
});

test('a different subject is 403 with a reason naming the subject', async (t) => {
  const e = await enrolled(t, 'subj-1');
  const res = await reenroll((await makeCsr('someone-else', { key: e.csr.key })).b64, e.tls);
  assertReason(t, res, 403, /subject/);
  t.is(reenrollAudit('someone-else').at(-1)?.outcome, 'rejected');
});

test('an added RDN in the subject is 403', async (t) => {
  const e = await enrolled(t, 'subj-2');
  const res = await reenroll((await makeCsr([['O', 'Plant'], ['CN', 'subj-2']], { key: e.csr.key })).b64, e.tls);
  assertReason(t, res, 403, /subject/);
});

test('a different subjectAltName is 403', async (t) => {
  const e = await enrolled(t, 'san-1', san('san-1.plant.example'));
  const res = await reenroll((await makeCsr('san-1', { key: e.csr.key, subjectAltNames: san('other.plant.example') })).b64, e.tls);
  assertReason(t, res, 403, /subjectAltName/);
});

test('a missing subjectAltName is 403', async (t) => {
  const e = await enrolled(t, 'san-2', san('san-2.plant.example'));
  assertReason(t, await reenroll((await makeCsr('san-2', { key: e.csr.key })).b64, e.tls), 403, /subjectAltName/);
});

test('a subjectAltName the certificate did not have is 403', async (t) => {
  const e = await enrolled(t, 'san-3');
  assertReason(t, await reenroll((await makeCsr('san-3', { key: e.csr.key, subjectAltNames: san('extra.plant.example') })).b64, e.tls), 403, /subjectAltName/);
});

test('an extra SAN entry next to the old one is 403', async (t) => {
  const e = await enrolled(t, 'san-4', san('san-4.plant.example'));
  const csr = await makeCsr('san-4', { key: e.csr.key, subjectAltNames: [...san('san-4.plant.example'), { type: 'ip', value: '10.0.0.4' }] });
  assertReason(t, await reenroll(csr.b64, e.tls), 403, /subjectAltName/);
});

test('no client certificate: 401 without credentials, 403 with Basic; text/plain either way', async (t) => {
  const csr = await makeCsr('nocert');
  assertReason(t, await reenroll(csr.b64, undefined), 401);
  assertReason(t, await reenroll(csr.b64, undefined, { auth: undefined }), 403, /certificate/);
});

test("a certificate issued by another label's CA is refused: 401 alone, 403 with Basic", async (t) => {
  const e = await enrolled(t, 'plant-dev', undefined, 'plant');
  const csr = await makeCsr('plant-dev', { key: e.csr.key });
  assertReason(t, await reenroll(csr.b64, e.tls), 401);
  assertReason(t, await reenroll(csr.b64, e.tls, { auth: undefined }), 403, /label/);
  // on its own label it renews
  issuedCert(t, await reenroll(csr.b64, e.tls, { label: 'plant' }));
});

// BUG (reenroll issuer check): checkReenrollIdentity accepts the certificate when ANY CA above
// it is one of the label's issuing CAs (peer.chain.slice(1).some(...)), not its issuer. With a
// root label and a subordinate label under it, a certificate the subordinate issued (label
// `line`, its own profile) renews on the root's label `default` — a cross-label re-enrollment.
// Fix (src/server/middleware/check-reenroll-identity.ts): require the direct issuer,
// peer.chain[1] (or: X509Certificate(peer.der).checkIssued + verify against an issuingCas
// entry), to be one of label.issuingCas.
test("a certificate issued by a subordinate label's CA does not renew on its parent's label (403)", async (t) => {
  const e = await enrolled(t, 'line-dev', undefined, 'line');
  t.true(e.cert.checkIssued(new X509Certificate(gw.gateway.pki.cas.get('line')!.certDer)));
  const csr = await makeCsr('line-dev', { key: e.csr.key });
  issuedCert(t, await reenroll(csr.b64, e.tls, { label: 'line' }));
  assertReason(t, await reenroll(csr.b64, e.tls), 403, /label/);
});

test('a bootstrap (client_trust) certificate authenticates simpleenroll but cannot be re-enrolled: 403', async (t) => {
  const leaf = await leafCert(boot.ca, 'boot-1');
  const csr = await makeCsr('boot-1', { key: leaf.key });
  const tlsId = { cert: leaf.certPem, key: leaf.keyPem };
  issuedCert(t, await enroll(gw, csr.b64, { auth: null, ...tlsId }));
  assertReason(t, await reenroll(csr.b64, tlsId), 403, /issued|label/);
});

// §3.7 + RFC 9440: behind an RA the certificate being renewed arrives in a Client-Cert header.
const relayHeader = (x: X509Certificate) => ({ 'Client-Cert': `:${x.raw.toString('base64')}:` });

test("§3.7 / RFC 9440: this label's RA relays the certificate being renewed in Client-Cert; a device may not", async (t) => {
  const ra = await leafCert(gw.gateway.pki.cas.get('root')!, 'plant-ra', { eku: [OID.clientAuth, OID.cmcRA] });
  const e = await enrolled(t, 'relayed-1', san('relayed-1.plant.example'));
  const csr = await makeCsr('relayed-1', { subjectAltNames: san('relayed-1.plant.example') });
  const res = await reenroll(csr.b64, { cert: ra.certPem, key: ra.keyPem }, { headers: relayHeader(e.cert) });
  t.is(issuedCert(t, res).subject, 'CN=relayed-1');
  t.is(reenrollAudit('relayed-1').at(-1)?.reenroll, 'rekey');
  const other = await enrolled(t, 'relayed-2');
  assertReason(t, await reenroll((await makeCsr('relayed-2')).b64, e.tls, { headers: relayHeader(other.cert) }), 403, /registration authority|RA/);
  const foreign = await enrolled(t, 'relayed-3', undefined, 'plant');
  assertReason(t, await reenroll((await makeCsr('relayed-3')).b64, { cert: ra.certPem, key: ra.keyPem }, { headers: relayHeader(foreign.cert) }), 403, /label/);
});

// Certificates are public: whoever may relay Client-Cert could renew any device's names with
// a key of its own. Only RAs of the label's own PKI may relay, and only within their grants.
test("RFC 9440 relay: an RA renews only names its grants cover, like an enrollment (dev-* yes, other-* no)", async (t) => {
  const ra = await leafCert(gw.gateway.pki.cas.get('root')!, 'narrow-ra', { eku: [OID.clientAuth, OID.cmcRA] });
  const raTls = { cert: ra.certPem, key: ra.keyPem };
  const mine = await enrolled(t, 'dev-9', undefined, 'narrow');
  t.is(issuedCert(t, await reenroll((await makeCsr('dev-9')).b64, raTls, { label: 'narrow', headers: relayHeader(mine.cert) })).subject, 'CN=dev-9');
  const theirs = await enrolled(t, 'other-9', undefined, 'narrow');
  assertReason(t, await reenroll((await makeCsr('other-9')).b64, raTls, { label: 'narrow', headers: relayHeader(theirs.cert) }), 403, /cert:ra\/narrow-ra may not request "CN=other-9"/);
});

test("RFC 9440 relay: a cmcRA certificate from a bootstrap CA cannot renew someone else's certificate", async (t) => {
  const makerRa = await leafCert(boot.ca, 'maker-ra', { eku: [OID.clientAuth, OID.cmcRA] });
  const victim = await enrolled(t, 'victim-1');
  const res = await reenroll((await makeCsr('victim-1')).b64, { cert: makerRa.certPem, key: makerRa.keyPem }, { headers: relayHeader(victim.cert) });
  t.true(res.status === 401 || res.status === 403, `${res.status} ${res.body.toString().slice(0, 80)}`);
});

test('an expired certificate is rejected (401 alone, 403 with Basic), naming the expiry', async (t) => {
  const root = gw.gateway.pki.cas.get('root')!;
  const key: KeyObject = (await makeCsr('x')).key;
  const old = await leafCert(root, 'expired-1', { key, now: new Date(Date.now() - 10 * 86_400_000), days: 1 });
  t.true(new Date(new X509Certificate(old.der).validTo) < new Date(), 'the certificate has expired');
  const csr = await makeCsr('expired-1', { key });
  const tlsId = { cert: old.certPem, key: old.keyPem };
  assertReason(t, await reenroll(csr.b64, tlsId), 401, /expired/i);
  assertReason(t, await reenroll(csr.b64, tlsId, { auth: undefined }), 403, /expired/i);
});

test('reenroll still applies the key policy: an RSA-1024 rekey is 403', async (t) => {
  const e = await enrolled(t, 'weak-rekey');
  const weak = await new Promise<KeyObject>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 1024 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
  );
  assertReason(t, await reenroll((await makeCsr('weak-rekey', { key: weak })).b64, e.tls), 403, /RSA|bits/);
});

test('reenroll cannot widen the profile: serverAuth on a clientAuth label is 403; CA:TRUE from an end-entity certificate is 403', async (t) => {
  const e = await enrolled(t, 'widen-1');
  assertReason(t, await reenroll((await makeCsr('widen-1', { key: e.csr.key, extKeyUsage: [OID.serverAuth] })).b64, e.tls), 403, /extended key usage/);
  const ca = await makeCsr('widen-1', { key: e.csr.key, basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign'] });
  assertReason(t, await reenroll(ca.b64, e.tls), 403, /CA/);
});

test('a renewed certificate can itself be renewed (the chain of renewals keeps working)', async (t) => {
  const e = await enrolled(t, 'chain-1', san('chain-1.plant.example'));
  let tlsId = e.tls;
  for (let i = 0; i < 3; i++) {
    const csr = await makeCsr('chain-1', { key: e.csr.key, subjectAltNames: san('chain-1.plant.example') });
    const next = issuedCert(t, await reenroll(csr.b64, tlsId));
    tlsId = { cert: next.toString(), key: e.csr.keyPem };
  }
  t.is(reenrollAudit('chain-1').filter((l) => l.status === 200).length, 3);
});
