import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEstError } from '../../src/errors.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';
import { type CaMaterial, createRootCa, createSubordinateCa, loadCa } from '../../src/pki/ca.js';
import { Signer } from '../../src/pki/issuance.js';
import { generateKey, spkiDer } from '../../src/pki/keys.js';

let dir: string;
let root: CaMaterial;
let sub: CaMaterial;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'estgw-issuance-'));
  root = await createRootCa('root', join(dir, 'root'), { subject: [['CN', 'Root']], days: 3650, pathLen: 1 });
  sub = await createSubordinateCa('sub', join(dir, 'sub'), root, { subject: [['CN', 'Sub']], days: 10, pathLen: 0 });
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

async function request(cn: string) {
  const key = await generateKey('p256');
  const spki = spkiDer(key);
  return { subjectDer: buildName([['CN', cn]]), spki, key: describeSpki(spki), validityDays: 30, extKeyUsage: [OID.clientAuth] };
}

test('a signer signs only what it prepared itself', async (t) => {
  const a = new Signer(sub);
  const b = new Signer(sub);
  const prepared = a.prepare(await request('x'));
  t.throws(() => b.sign(prepared), { message: /did not prepare/ });
  t.notThrows(() => a.sign(prepared));
});

test('RFC 5280 6.1.3: validity is capped at the issuing CA notAfter', async (t) => {
  const c = new Signer(sub).issue(await request('long'));
  const x = new X509Certificate(c.der);
  t.true(new Date(x.validTo).getTime() <= new Date(sub.cert.validTo).getTime());
  t.true(x.verify(sub.cert.publicKey));
  t.true(x.checkIssued(sub.cert));
});

test('serials are positive, random and at most 128 bits', async (t) => {
  const signer = new Signer(sub);
  const req = await request('s');
  const serials = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const f = parseCertificate(signer.issue(req).der);
    t.true(f.serial[0]! < 0x80 || f.serial.length === 0);
    t.true(f.serial.length <= 17);
    serials.add(f.serial.toString('hex'));
  }
  t.is(serials.size, 200);
});

test('end-entity profile: SKI, AKI = issuer SKI, critical basicConstraints CA:FALSE and keyUsage, EKU', async (t) => {
  const f = parseCertificate(new Signer(sub).issue(await request('ee')).der);
  const ext = (oid: string) => f.extensions.find((e) => e.oid === oid);
  t.deepEqual(f.basicConstraints, { ca: false });
  t.true(ext(OID.basicConstraints)!.critical);
  t.deepEqual(f.keyUsage, ['digitalSignature']);
  t.true(ext(OID.keyUsage)!.critical);
  t.deepEqual(f.extKeyUsage, [OID.clientAuth]);
  t.truthy(f.subjectKeyId);
  t.true(ext(OID.authorityKeyIdentifier)!.value.includes(sub.fields.subjectKeyId!));
});

test('CA issuance respects the issuer pathLen', async (t) => {
  const req = await request('ca');
  const e = t.throws(() => new Signer(sub).issue({ ...req, ca: {} }));
  t.true(isEstError(e, 'forbidden'));
  const tooDeep = t.throws(() => new Signer(root).issue({ ...req, ca: { pathLen: 1 } }));
  t.true(isEstError(tooDeep, 'forbidden'));
  const f = parseCertificate(new Signer(root).issue({ ...req, ca: {} }).der);
  t.deepEqual(f.basicConstraints, { ca: true, pathLen: 0 });
  t.deepEqual(f.keyUsage, ['digitalSignature', 'keyCertSign', 'cRLSign']);
});

test('an expired CA refuses to issue: unavailable, not a broken certificate', async (t) => {
  const req = await request('late');
  const e = t.throws(() => new Signer(sub).prepare(req, new Date(Date.now() + 30 * 86_400_000)));
  t.true(isEstError(e, 'unavailable'));
});

test('a stored subordinate loads back with its chain up to the root; a mismatched key is refused', async (t) => {
  const loaded = await loadCa('sub', join(dir, 'sub'));
  t.is(loaded.chain.length, 2);
  t.deepEqual(loaded.chain[1], root.certDer);
  const { assembleCa } = await import('../../src/pki/ca.js');
  t.throws(() => assembleCa('bad', sub.certDer, root.key, [root.certDer]), { message: /does not match/ });
});
