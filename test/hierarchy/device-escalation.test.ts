// Security review, finding 1: a device holding only the tutorial's shared
// bootstrap password must not become an RA or a CA of the plant. Driven on the
// shipped hierarchy (config/hierarchy), bootstrapped as its README says.
import test from 'ava';
import { X509Certificate, randomBytes } from 'node:crypto';
import { toPem } from '../../src/est/base64.js';
import { parseCsr } from '../../src/est/csr.js';
import { OID } from '../../src/est/oids.js';
import type { Identity } from '../../src/policy/policy.js';
import { assertReason, certsOf, issuedCert } from '../helpers/est.js';
import { basic } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';
import { type ShippedHierarchy, post, startShippedHierarchy } from './shipped.js';

let h: ShippedHierarchy;
const DEVICE = basic('estuser', 'estpwd');
const subCaCsr = () =>
  makeCsr([['O', 'Plant'], ['OU', 'Supervisory'], ['CN', 'bottom layer CA']], {
    basicConstraints: { ca: true, pathLen: 0 },
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  });

test.before(async () => {
  h = await startShippedHierarchy(`estgw:test:escalation:${randomBytes(4).toString('hex')}:`);
});
test.after.always(async () => h?.close());

/**
 * What a device would hold had it got CN=bottom-ra past every layer: a
 * certificate from the top's device profile, signed the way the top signs for
 * the middle's RA relaying a device. Built in-process so that the later steps
 * are tested even though step 1 is now refused.
 */
async function deviceCertNamed(cn: string): Promise<{ cert: string; key: string }> {
  const label = h.top.gw.labels.get('default')!;
  const csr = await makeCsr(cn);
  const relayedBy: Identity = { kind: 'cert', name: 'middle-ra', role: 'ra' };
  // the decision for a harmless name, applied to the reserved one: policy bypassed, profile kept
  const decision = label.policy.decideEnroll(relayedBy, parseCsr((await makeCsr('harmless')).der));
  const issued = await label.issuer.enroll({ op: 'simpleenroll', label: 'default', csr: parseCsr(csr.der), decision, identity: relayedBy });
  return { cert: toPem('CERTIFICATE', issued.certDer), key: csr.keyPem };
}

test('step 1: a device with the bootstrap password cannot get a certificate named like an RA or a layer CA, at any layer', async (t) => {
  for (const cn of ['bottom-ra', 'middle-ra', 'bottom layer CA']) {
    assertReason(t, await post(h.bottom, (await makeCsr(cn)).b64, { auth: DEVICE }), 403, /reserved/);
  }
  // the middle refuses it too, should a bottom layer relay it
  const relayed = await post(h.middle, (await makeCsr('bottom-ra')).b64, { cert: h.bottomRa.certPem, key: h.bottomRa.keyPem });
  assertReason(t, relayed, 403, /reserved/);
});

test('step 2: a device certificate named bottom-ra gets no sub-CA and no RA certificate from the middle', async (t) => {
  const dev = await deviceCertNamed('bottom-ra');
  t.false(new X509Certificate(dev.cert).keyUsage?.includes(OID.cmcRA) ?? false);
  assertReason(t, await post(h.middle, (await subCaCsr()).b64, { label: 'subca', ...dev }), 403, /cert:device\/bottom-ra/);
  const ra = await post(h.middle, (await makeCsr('bottom-ra')).b64, { label: 'ra', ...dev });
  t.true(ra.status === 403 || ra.status === 401, `${ra.status} ${ra.body}`);
  const raWithPassword = await post(h.middle, (await makeCsr('bottom-ra')).b64, { label: 'ra', auth: DEVICE, ...dev });
  t.true(raWithPassword.status === 403 || raWithPassword.status === 401, `${raWithPassword.status} ${raWithPassword.body}`);
  // nor does it enroll other names on the middle as if it were the bottom's RA
  assertReason(t, await post(h.middle, (await makeCsr('anything')).b64, dev), 403, /cert:device\/bottom-ra/);
});

test('step 2 at the top: a device certificate named middle-ra gets no sub-CA, no RA certificate, no device certificate', async (t) => {
  const dev = await deviceCertNamed('middle-ra');
  assertReason(t, await post(h.top, (await subCaCsr()).b64, { label: 'subca', ...dev }), 403);
  assertReason(t, await post(h.top, (await makeCsr('bottom-ra')).b64, { label: 'ra', ...dev }), 403);
  assertReason(t, await post(h.top, (await makeCsr('x')).b64, dev), 403);
});

test('step 3: a device certificate does not re-enroll into an RA or a CA on another label', async (t) => {
  const dev = await deviceCertNamed('sensor-9');
  const res = await post(h.top, (await makeCsr('sensor-9')).b64, { label: 'ra', op: 'simplereenroll', ...dev });
  assertReason(t, res, 403, /label "default"/);
  const ca = await post(h.top, (await makeCsr('sensor-9', { basicConstraints: { ca: true, pathLen: 0 } })).b64, { label: 'subca', op: 'simplereenroll', ...dev });
  t.is(ca.status, 403, ca.body.toString());
});

test('the legitimate path still works: a device enrolls through two RAs, renews through them, and the bottom RA holds its sub-CA', async (t) => {
  const csr = await makeCsr('device-1', { subjectAltNames: [{ type: 'dns', value: 'device-1.plant.local' }] });
  const cert = issuedCert(t, await post(h.bottom, csr.b64, { auth: DEVICE }));
  t.regex(cert.issuer, /Plant issuing CA/);
  const renewed = issuedCert(
    t,
    await post(h.bottom, (await makeCsr('device-1', { subjectAltNames: [{ type: 'dns', value: 'device-1.plant.local' }] })).b64, {
      op: 'simplereenroll',
      cert: cert.toString(),
      key: csr.keyPem,
    }),
  );
  t.is(renewed.subject, cert.subject);
  const subCa = new X509Certificate(h.bottom.gw.pki.cas.get('bottom')!.certDer);
  t.true(subCa.ca);
  t.true(new X509Certificate(h.bottomRa.certPem).keyUsage?.includes(OID.cmcRA));
  t.is(certsOf((await post(h.bottom, csr.b64, { auth: DEVICE })).body).length, 1);
});
