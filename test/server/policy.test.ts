// Issuance policy per label (RFC 7030 §4.2: the CA decides what it issues):
// key types, validity (RFC 5280 §6.1.3: never beyond the CA), key usage and
// EKU, which names an identity may request, CA certificates, serials, SKI/AKI,
// and each label's own CA chain on /<label>/cacerts.
import test from 'ava';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { toPem } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { ctx, oid, seq, tlv, utf8 } from '../../src/est/der.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';
import { Signer } from '../../src/pki/issuance.js';
import { generateKey, spkiDer } from '../../src/pki/keys.js';
import { certText, openssl, scratchDir } from '../helpers/cli.js';
import { csrWithExtensions, rsaKey } from '../helpers/csr-raw.js';
import { type EnrollOptions, assertReason, certsOf, enroll, get, issuedCert, serverKeygenAnswer } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { basic } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

const DAY = 86_400_000;
let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-policy-');
  gw = await startTestGateway({
    users: { estuser: 'estpwd', alice: 'alice-pw', bob: 'bob-pw', edge: 'edge-pw' },
    cas: {
      root: {},
      ops: { create: 'subordinate', parent: 'root', path_len: 1, subject: '/O=Plant/CN=ops sub CA' },
      short: { create: 'root', days: 2, subject: '/CN=short-lived CA' },
    },
    labels: {
      default: {},
      ops: { ca: 'ops', key_types: ['rsa'], rsa_min_bits: 2048, ext_key_usage: ['serverAuth'], cert_days: 10 },
      short: { ca: 'short', cert_days: 30 },
      brief: { cert_days: 30, cert_lifetime: '90s' },
      dual: { ext_key_usage: ['clientAuth', 'serverAuth'] },
      skg: { serverkeygen_key: 'p384' },
      names: {
        grants: [
          { identity: 'user:alice', common_names: ['alice-*'], dns_names: ['*.alice.plant.example'] },
          { identity: ['user:estuser', 'user:edge'], common_names: ['{identity}-*'], dns_names: ['{identity}.plant.example'], ip_addresses: ['10.0.*'] },
        ],
      },
      edge: {
        ca: 'ops',
        grants: [
          { identity: 'user:edge', common_names: ['*'], allow_ca: true, max_path_len: 0 },
          { identity: 'user:estuser', common_names: ['*'] },
        ],
      },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const as = (user: string, pw: string, o: EnrollOptions = {}): EnrollOptions => ({ auth: basic(user, pw), ...o });
const alice = (o: EnrollOptions = {}) => as('alice', 'alice-pw', { label: 'names', ...o });
const dns = (...v: string[]) => v.map((value) => ({ type: 'dns' as const, value }));
const fieldsOf = (x: X509Certificate) => parseCertificate(x.raw);

// ---- key types ----

test('key types: RSA-1024 is 403 naming the size; RSA-2048, RSA-3072, P-256 and P-384 are issued', async (t) => {
  const weak = await makeCsr('rsa1024', { key: await rsaKey(1024) });
  assertReason(t, await enroll(gw, weak.b64), 403, /RSA.*2048|1024/);
  for (const keySpec of ['rsa2048', 'rsa3072', 'p256', 'p384'] as const) {
    const c = issuedCert(t, await enroll(gw, (await makeCsr(`key-${keySpec}`, { keySpec })).b64));
    t.is(c.subject, `CN=key-${keySpec}`);
  }
});

test('key types: Ed25519 is 403 where the label does not list it', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('ed', { keySpec: 'ed25519' })).b64), 403, /ED25519|key type/i);
});

test('key types: a label allowing only RSA refuses P-256 (403) and issues RSA-2048', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('ops-ec')).b64, { label: 'ops' }), 403, /P256|key type/i);
  issuedCert(t, await enroll(gw, (await makeCsr('ops-rsa', { keySpec: 'rsa2048' })).b64, { label: 'ops' }));
});

// ---- validity ----

test('cert_days is honoured (ops: 10 days)', async (t) => {
  const c = issuedCert(t, await enroll(gw, (await makeCsr('days-10', { keySpec: 'rsa2048' })).b64, { label: 'ops' }));
  const days = (Date.parse(c.validTo) - Date.now()) / DAY;
  t.true(days > 9.99 && days <= 10.001, `${days} days`);
  t.true(Date.parse(c.validFrom) <= Date.now());
});

test('cert_lifetime wins over cert_days; a short-lived certificate is backdated by a tenth of its life, not 5 minutes', async (t) => {
  const csr = (await makeCsr('brief')).b64;
  // The gateway reads its clock somewhere between these two instants, however slow the machine is;
  // X.509 times have whole seconds, so allow one second of truncation on either side.
  const before = Date.now();
  const c = issuedCert(t, await enroll(gw, csr, { label: 'brief' }));
  const after = Date.now();
  const life = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 1000;
  t.true(life >= 98 && life <= 100, `${life} s`); // 90 s ahead + 9 s back, to the second
  const ahead = Date.parse(c.validTo) - 90_000;
  t.true(ahead >= before - 1000 && ahead <= after, `issued ${ahead - before} ms after the request began, which took ${after - before} ms`);
});

test('RFC 5280 §6.1.3: a certificate never outlives its CA (CA of 2 days, cert_days 30)', async (t) => {
  const ca = new X509Certificate(gw.gateway.pki.cas.get('short')!.certDer);
  const c = issuedCert(t, await enroll(gw, (await makeCsr('capped')).b64, { label: 'short' }));
  t.true(Date.parse(c.validTo) <= Date.parse(ca.validTo), `${c.validTo} <= ${ca.validTo}`);
  t.true(Date.parse(c.validTo) > Date.now() + DAY);
  t.true(Date.parse(c.validFrom) >= Date.parse(ca.validFrom));
});

// ---- key usage / EKU ----

test('EKU: the default label issues clientAuth only; the ops label serverAuth only', async (t) => {
  const a = issuedCert(t, await enroll(gw, (await makeCsr('eku-default')).b64));
  t.deepEqual(fieldsOf(a).extKeyUsage, [OID.clientAuth]);
  const b = issuedCert(t, await enroll(gw, (await makeCsr('eku-ops', { keySpec: 'rsa2048' })).b64, { label: 'ops' }));
  t.deepEqual(fieldsOf(b).extKeyUsage, [OID.serverAuth]);
  t.deepEqual(fieldsOf(b).keyUsage, ['digitalSignature', 'keyEncipherment']);
  t.deepEqual(fieldsOf(a).keyUsage, ['digitalSignature']);
  t.false(fieldsOf(a).basicConstraints?.ca);
});

test('EKU: a CSR may narrow the label\'s set (serverAuth only on a dual label) but never widen it', async (t) => {
  const both = issuedCert(t, await enroll(gw, (await makeCsr('dual-both')).b64, { label: 'dual' }));
  t.deepEqual(fieldsOf(both).extKeyUsage, [OID.clientAuth, OID.serverAuth]);
  const narrowed = issuedCert(t, await enroll(gw, (await makeCsr('dual-server', { extKeyUsage: [OID.serverAuth] })).b64, { label: 'dual' }));
  t.deepEqual(fieldsOf(narrowed).extKeyUsage, [OID.serverAuth]);
  assertReason(t, await enroll(gw, (await makeCsr('eku-wide', { extKeyUsage: [OID.serverAuth] })).b64), 403, /extended key usage.*1\.3\.6\.1\.5\.5\.7\.3\.1/);
});

test('EKU: nobody makes themselves an RA (id-kp-cmcRA) or a code signer by asking', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('want-ra', { extKeyUsage: [OID.clientAuth, OID.cmcRA] })).b64), 403, /1\.3\.6\.1\.5\.5\.7\.3\.28/);
  assertReason(t, await enroll(gw, (await makeCsr('want-cs', { extKeyUsage: ['1.3.6.1.5.5.7.3.3'] })).b64), 403, /extended key usage/);
});

// ---- names and grants ----

test('grants: alice may request CN alice-* only; anchored globs', async (t) => {
  issuedCert(t, await enroll(gw, (await makeCsr('alice-1')).b64, alice()));
  assertReason(t, await enroll(gw, (await makeCsr('bob-1')).b64, alice()), 403, /CN "bob-1"/);
  assertReason(t, await enroll(gw, (await makeCsr('xalice-1')).b64, alice()), 403, /CN/);
  assertReason(t, await enroll(gw, (await makeCsr([['CN', 'alice-1'], ['CN', 'bob']])).b64, alice()), 403, /CN "bob"/);
});

test('grants: {identity} stands for the requester\'s own name', async (t) => {
  issuedCert(t, await enroll(gw, (await makeCsr('estuser-7')).b64, { label: 'names' }));
  issuedCert(t, await enroll(gw, (await makeCsr('edge-7', { subjectAltNames: dns('edge.plant.example') })).b64, as('edge', 'edge-pw', { label: 'names' })));
  assertReason(t, await enroll(gw, (await makeCsr('edge-8')).b64, { label: 'names' }), 403, /CN "edge-8"/);
  assertReason(t, await enroll(gw, (await makeCsr('estuser-8', { subjectAltNames: dns('edge.plant.example') })).b64, { label: 'names' }), 403, /edge\.plant\.example/);
});

test('grants: an identity without a grant on the label is 403', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('bob-1')).b64, as('bob', 'bob-pw', { label: 'names' })), 403, /user:bob may not enroll/);
});

test('grants: dNSName globs; the SAN is copied exactly as requested', async (t) => {
  const ok = issuedCert(t, await enroll(gw, (await makeCsr('alice-dns', { subjectAltNames: dns('a.alice.plant.example', 'b.alice.plant.example') })).b64, alice()));
  t.is(ok.subjectAltName, 'DNS:a.alice.plant.example, DNS:b.alice.plant.example');
  assertReason(t, await enroll(gw, (await makeCsr('alice-dns2', { subjectAltNames: dns('a.bob.plant.example') })).b64, alice()), 403, /dns:a\.bob\.plant\.example/);
  assertReason(t, await enroll(gw, (await makeCsr('alice-dns3', { subjectAltNames: dns('alice.plant.example') })).b64, alice()), 403, /not allowed/);
  assertReason(t, await enroll(gw, (await makeCsr('alice-dns4', { subjectAltNames: dns('a.alice.plant.example.evil.example') })).b64, alice()), 403, /not allowed/);
});

test('grants: SAN types the grant does not list are 403 (iPAddress, rfc822Name, URI for alice)', async (t) => {
  const cases = [
    [{ type: 'ip', value: '10.0.0.1' }, /ip/],
    [{ type: 'email', value: 'alice@plant.example' }, /email/],
    [{ type: 'uri', value: 'urn:plant:alice' }, /uri/],
  ] as const;
  for (const [name, re] of cases) {
    assertReason(t, await enroll(gw, (await makeCsr('alice-san', { subjectAltNames: [{ ...name }] })).b64, alice()), 403, re);
  }
  // estuser's grant lists 10.0.*
  issuedCert(t, await enroll(gw, (await makeCsr('estuser-ip', { subjectAltNames: [{ type: 'ip', value: '10.0.3.4' }] })).b64, { label: 'names' }));
  assertReason(t, await enroll(gw, (await makeCsr('estuser-ip2', { subjectAltNames: [{ type: 'ip', value: '10.1.3.4' }] })).b64, { label: 'names' }), 403, /10\.1\.3\.4/);
});

test('grants: otherName and directoryName SANs are never copied (403, even where every listed type is allowed)', async (t) => {
  const key = await generateKey('p256');
  const upn = seq(ctx(0, true, oid('1.3.6.1.4.1.311.20.2.3'), ctx(0, true, utf8('admin@corp.example'))));
  const dirName = seq(ctx(4, true, buildName([['CN', 'root']])));
  for (const [what, value] of [['other', upn], ['dirName', dirName]] as const) {
    const csr = csrWithExtensions(key, buildName([['CN', `san-${what}`]]), [{ oid: OID.subjectAltName, value }]);
    assertReason(t, await enroll(gw, csr.b64), 403, new RegExp(what));
  }
});

test('RFC 5280 §4.2.1.6: an empty subject needs a SAN, which is then critical; without one it is 403', async (t) => {
  const key = await generateKey('p256');
  const sanOnly = csrWithExtensions(key, seq(), [{ oid: OID.subjectAltName, value: seq(tlv(0x82, Buffer.from('nosubject.plant.example'))) }]);
  const c = issuedCert(t, await enroll(gw, sanOnly.b64));
  t.is(c.subjectAltName, 'DNS:nosubject.plant.example');
  t.true(fieldsOf(c).extensions.find((e) => e.oid === OID.subjectAltName)!.critical);
  assertReason(t, await enroll(gw, csrWithExtensions(key, seq(), []).b64), 403, /subject/);
});

// GAP (names policy): grants constrain only CNs and SAN entries. Every other
// subject attribute is copied verbatim, so alice (common_names = ["alice-*"],
// emails = []) gets a certificate whose subject says emailAddress=ceo@… and
// O=Another Plant; a subject with no CN at all skips the CN rule entirely.
// Fix (src/policy/policy.ts grantRefuses): check pkcs9 emailAddress values
// against `emails`, and refuse subject attributes other than CN unless the
// grant allows them (e.g. a new `subject_attributes` key; default: CN only).
test('grants: subject attributes other than CN are governed too (emailAddress, O, a subject without CN)', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr([['CN', 'alice-mail'], ['emailAddress', 'ceo@plant.example']])).b64, alice()), 403, /email/i);
  assertReason(t, await enroll(gw, (await makeCsr([['O', 'Another Plant'], ['CN', 'alice-org']])).b64, alice()), 403);
  assertReason(t, await enroll(gw, (await makeCsr([['O', 'Another Plant'], ['OU', 'Operators']], { subjectAltNames: dns('x.alice.plant.example') })).b64, alice()), 403);
});

// ---- CA certificates ----

const caCsr = (cn: string, pathLen?: number) =>
  makeCsr(cn, { basicConstraints: pathLen === undefined ? { ca: true } : { ca: true, pathLen }, keyUsage: ['keyCertSign', 'cRLSign', 'digitalSignature'] });

test('CA requests: 403 without allow_ca (default label, and the edge label for estuser)', async (t) => {
  assertReason(t, await enroll(gw, (await caCsr('sub-ca-1', 0)).b64), 403, /CA certificates are not allowed/);
  assertReason(t, await enroll(gw, (await caCsr('sub-ca-2', 0)).b64, { label: 'edge' }), 403, /CA/);
});

test('keyCertSign without CA:TRUE is 403', async (t) => {
  assertReason(t, await enroll(gw, (await makeCsr('kcs', { keyUsage: ['keyCertSign'] })).b64), 403, /keyCertSign/);
});

test('CA requests: an IoT Edge CA CSR (CA:TRUE pathlen 0, keyCertSign) is issued to a grant with allow_ca, max_path_len 0', async (t) => {
  const csr = await caCsr('edge-ca', 0);
  const c = issuedCert(t, await enroll(gw, csr.b64, as('edge', 'edge-pw', { label: 'edge' })));
  t.true(c.ca);
  const f = fieldsOf(c);
  t.deepEqual(f.basicConstraints, { ca: true, pathLen: 0 });
  t.true(f.keyUsage?.includes('keyCertSign'));
  t.is(f.extKeyUsage, undefined);
  const text = await certText(tmp.dir, c.toString());
  t.regex(text, /CA:TRUE, pathlen:0/);
  // the edge CA signs a leaf that chains to root through ops
  const ops = gw.gateway.pki.cas.get('ops')!;
  const rootFile = tmp.path('root.pem');
  const chainFile = tmp.path('ops-and-edge.pem');
  const leafFile = tmp.path('edge-leaf.pem');
  await writeFile(rootFile, gw.caPem);
  await writeFile(chainFile, toPem('CERTIFICATE', ops.certDer) + c.toString());
  const edgeCa = { ...ops, name: 'edge', certDer: c.raw, cert: c, fields: f, key: csr.key, chain: [c.raw, ...ops.chain] };
  const leafKey = await generateKey('p256');
  const leaf = new Signer(edgeCa).issue({ subjectDer: buildName([['CN', 'module']]), spki: spkiDer(leafKey), key: describeSpki(spkiDer(leafKey)), validityDays: 1, extKeyUsage: [OID.clientAuth] });
  await writeFile(leafFile, toPem('CERTIFICATE', leaf.der));
  t.regex(await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, leafFile]), /: OK/);
});

test('CA requests: without a pathLen the grant\'s max_path_len is used', async (t) => {
  const c = issuedCert(t, await enroll(gw, (await caCsr('edge-ca-nopl')).b64, as('edge', 'edge-pw', { label: 'edge' })));
  t.deepEqual(fieldsOf(c).basicConstraints, { ca: true, pathLen: 0 });
});

test('CA requests: pathLen above the grant\'s max_path_len is 403', async (t) => {
  assertReason(t, await enroll(gw, (await caCsr('edge-ca-pl1', 1)).b64, as('edge', 'edge-pw', { label: 'edge' })), 403, /pathLen 1/);
});

test('serverkeygen never issues a CA certificate', async (t) => {
  assertReason(t, await enroll(gw, (await caCsr('skg-ca', 0)).b64, as('edge', 'edge-pw', { label: 'edge', op: 'serverkeygen' })), 403, /CA/);
});

// ---- serverkeygen key type (RFC 7030 §4.4) ----

test('serverkeygen makes RSA-2048 by default and the label\'s serverkeygen_key otherwise (P-384)', async (t) => {
  const csr = await makeCsr('skg-default');
  const a = await enroll(gw, csr.b64, { op: 'serverkeygen' });
  t.is(a.status, 200, a.body.toString());
  const def = serverKeygenAnswer(t, a.headers['content-type']!, a.body);
  t.is(def.key.asymmetricKeyDetails?.modulusLength, 2048);
  const spki = (k: import('node:crypto').KeyObject) => (k.type === 'private' ? createPublicKey(k) : k).export({ format: 'der', type: 'spki' });
  t.false(spki(def.cert.publicKey).equals(spki(csr.key)), 'not the CSR key');
  const b = await enroll(gw, (await makeCsr('skg-p384')).b64, { op: 'serverkeygen', label: 'skg' });
  t.is(b.status, 200, b.body.toString());
  const p384 = serverKeygenAnswer(t, b.headers['content-type']!, b.body);
  t.is(p384.key.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  t.is(p384.cert.subject, 'CN=skg-p384');
  t.deepEqual(fieldsOf(p384.cert).keyUsage, ['digitalSignature']);
});

// DEVIATION (RFC 7030 §4.4.1: for serverkeygen "the server MUST ignore the public key values
// and signature in the CSR"): applyPolicy runs LabelPolicy.checkKey on the CSR's own key, so
// a globalsign-style serverkeygen request (CSR signed with P-256) on a label whose key_types
// are ["rsa"] is 403 although the issued key would be the server's RSA-2048 — and an RSA-1024
// signing key is refused although it is thrown away. Fix (src/policy/policy.ts decideEnroll +
// src/server/routes.ts): for serverkeygen check the key type of serverkeygen_key, not csr.key
// (and have check-config refuse a serverkeygen_key outside key_types).
test('serverkeygen ignores the CSR\'s own key type: a P-256-signed request on an RSA-only label gets an RSA-2048 key', async (t) => {
  const res = await enroll(gw, (await makeCsr('skg-ops')).b64, { op: 'serverkeygen', label: 'ops' });
  t.is(res.status, 200, res.body.toString());
  const a = serverKeygenAnswer(t, res.headers['content-type']!, res.body);
  t.is(a.key.asymmetricKeyDetails?.modulusLength, 2048);
  t.deepEqual(fieldsOf(a.cert).extKeyUsage, [OID.serverAuth]);
});

// ---- serials, SKI/AKI ----

test('serials: 50 certificates have distinct positive serials of at most 16 bytes (128 bits), each with SKI and AKI', async (t) => {
  const csr = await makeCsr('serials');
  const certs = await Promise.all(Array.from({ length: 50 }, async () => issuedCert(t, await enroll(gw, csr.b64))));
  const serials = certs.map((c) => fieldsOf(c).serial);
  t.is(new Set(serials.map((s) => s.toString('hex'))).size, 50);
  for (const s of serials) {
    t.true((s[0]! & 0x80) === 0, 'positive');
    const magnitude = s[0] === 0 ? s.subarray(1) : s;
    t.true(magnitude.length <= 16 && magnitude.length >= 8, `magnitude ${magnitude.length} bytes`);
  }
  const rootSki = parseCertificate(new X509Certificate(gw.caPem).raw).subjectKeyId!;
  for (const c of certs) {
    const f = fieldsOf(c);
    t.truthy(f.subjectKeyId);
    const aki = f.extensions.find((e) => e.oid === OID.authorityKeyIdentifier)!;
    t.true(aki.value.includes(rootSki));
  }
  // the audit names each certificate by its serial
  const audited = new Set(gw.audit().filter((l) => l.subject === 'CN=serials').map((l) => String(l.serial).replace(/^(00)+/, '')));
  for (const c of certs) t.true(audited.has(c.serialNumber.toLowerCase().replace(/^(00)+/, '')));
});

// BUG (audit serial): the audit's `serial` is the 16 random bytes as generated
// (src/pki/issuance.ts: serial.toString('hex')), but DER drops a leading zero
// byte, so one certificate in 256 is logged as "00ab…" while it is "ab…"
// (X509Certificate.serialNumber, openssl). The same applies to the existing
// simpleenroll test's audit check, which is therefore flaky 1 run in 256.
// Fix: in Signer.prepare report the INTEGER's canonical magnitude, e.g.
// serialHex = unsignedInteger(serial) content without the sign byte, or draw
// the serial with the top bit clear and a nonzero first byte.
test('audit serial: the serialHex a Signer reports (and the audit logs) is the certificate\'s serial number', (t) => {
  const signer = new Signer(gw.gateway.pki.cas.get('root')!);
  const spki = parseCertificate(new X509Certificate(gw.caPem).raw).spki;
  const req = { subjectDer: buildName([['CN', 'serial-probe']]), spki, key: describeSpki(spki), validityDays: 1, extKeyUsage: [] };
  for (let i = 0; i < 4000; i++) {
    const c = signer.issue(req);
    const actual = new X509Certificate(c.der).serialNumber.toLowerCase();
    if (actual !== c.serialHex) {
      t.is(c.serialHex, actual);
      return;
    }
  }
  t.pass();
});

// ---- labelled CA chains ----

test('/.well-known/est/<label>/cacerts returns that label\'s chain (subordinate, then root); openssl verify -CAfile root -untrusted sub', async (t) => {
  const res = await get(gw, 'cacerts', 'ops');
  t.is(res.status, 200);
  const chain = certsOf(res.body);
  const ops = gw.gateway.pki.cas.get('ops')!;
  t.is(chain.length, 2);
  t.true(chain[0]!.raw.equals(ops.certDer));
  t.true(chain[1]!.raw.equals(new X509Certificate(gw.caPem).raw));
  t.true(fieldsOf(chain[0]!).basicConstraints?.ca && fieldsOf(chain[0]!).basicConstraints?.pathLen === 1);
  const def = certsOf((await get(gw, 'cacerts')).body);
  t.is(def.length, 1);
  const short = certsOf((await get(gw, 'cacerts', 'short')).body);
  t.true(short[0]!.raw.equals(gw.gateway.pki.cas.get('short')!.certDer));

  const issued = issuedCert(t, await enroll(gw, (await makeCsr('ops-verify', { keySpec: 'rsa2048' })).b64, { label: 'ops' }));
  t.true(issued.checkIssued(chain[0]!));
  const files = { root: tmp.path('v-root.pem'), sub: tmp.path('v-sub.pem'), leaf: tmp.path('v-leaf.pem') };
  await writeFile(files.root, chain[1]!.toString());
  await writeFile(files.sub, chain[0]!.toString());
  await writeFile(files.leaf, issued.toString());
  t.regex(await openssl(['verify', '-CAfile', files.root, '-untrusted', files.sub, files.leaf]), /: OK/);
  await t.throwsAsync(openssl(['verify', '-CAfile', files.root, files.leaf]), undefined, 'the subordinate is needed');
});
