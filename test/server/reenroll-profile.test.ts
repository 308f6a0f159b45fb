// Security review: re-enrollment stays on its profile. A certificate renewed
// on another label never gains that label's EKU, lifetime or CA flag.
import test from 'ava';
import { OID } from '../../src/est/oids.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { certificateProfiles } from '../../src/policy/policy.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { makeCsr } from '../helpers/pki.js';

let gw: TestGateway;
const PROFILED = '1.3.6.1.4.1.32473.1.7'; // RFC 5612's documentation arc

test.before(async () => {
  gw = await startTestGateway({
    labels: {
      default: { cert_days: 30 },
      brief: { cert_lifetime: '60s' },
      ra: { cert_days: 365, ext_key_usage: ['cmcRA', 'clientAuth'], grants: [{ identity: 'user:estuser', common_names: ['*'] }] },
      server: { ext_key_usage: ['serverAuth', 'clientAuth'] },
      pinned: { profile_oid: PROFILED },
      sub: { grants: [{ identity: 'user:estuser', common_names: ['*'], allow_ca: true, max_path_len: 0 }] },
    },
    cas: { root: { path_len: 2 } },
  });
});
test.after.always(async () => gw?.close());

async function enrolled(cn: string, label?: string, o: Parameters<typeof makeCsr>[1] = {}) {
  const csr = await makeCsr(cn, o);
  const cert = issuedCert({ is: () => undefined } as never, await enroll(gw, csr.b64, label ? { label } : {}));
  return { cert: cert.toString(), key: csr.keyPem, x: cert };
}

const reenroll = async (cur: { cert: string; key: string }, cn: string, label?: string, o: Parameters<typeof makeCsr>[1] = {}) =>
  enroll(gw, (await makeCsr(cn, o)).b64, { op: 'simplereenroll', auth: null, cert: cur.cert, key: cur.key, ...(label ? { label } : {}) });

test('a device certificate re-enrolled on an RA label is refused, naming the label that issued it', async (t) => {
  const dev = await enrolled('dev-a');
  assertReason(t, await reenroll(dev, 'dev-a', 'ra'), 403, /renew it on label "default"/);
});

test('a 60-second certificate re-enrolled on the 30-day label lives no longer than it did', async (t) => {
  const brief = await enrolled('brief-a', 'brief');
  const span = Date.parse(brief.x.validTo) - Date.parse(brief.x.validFrom);
  const renewed = issuedCert(t, await reenroll(brief, 'brief-a'));
  t.true(Date.parse(renewed.validTo) - Date.parse(renewed.validFrom) <= span + 1000, `${renewed.validFrom} .. ${renewed.validTo}`);
});

test('EKU never changes by renewing elsewhere: clientAuth does not gain serverAuth, nor does a server certificate lose it', async (t) => {
  const dev = await enrolled('dev-b');
  // a label that issues more than the certificate has: the renewal keeps what it had, and gains nothing
  t.deepEqual(issuedCert(t, await reenroll(dev, 'dev-b', 'server')).keyUsage, [OID.clientAuth]);
  const srv = await enrolled('srv-b', 'server');
  assertReason(t, await reenroll(srv, 'srv-b'), 403, /renew it on label "server"/);
  t.deepEqual(issuedCert(t, await reenroll(srv, 'srv-b', 'server')).keyUsage, [OID.serverAuth, OID.clientAuth]);
});

test('the CA flag never changes by renewing: a CA does not renew as an end entity on another label, nor an end entity as a CA', async (t) => {
  const ca = await enrolled('sub-a', 'sub', { basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign', 'cRLSign', 'digitalSignature'] });
  assertReason(t, await reenroll(ca, 'sub-a'), 403, /CA/);
  const dev = await enrolled('dev-c');
  assertReason(t, await reenroll(dev, 'dev-c', 'sub', { basicConstraints: { ca: true, pathLen: 0 } }), 403, /not a CA/);
});

test('profile_oid: a label writes its certificatePolicies OID, and its certificates renew only there', async (t) => {
  const p = await enrolled('pin-a', 'pinned');
  t.deepEqual(certificateProfiles(parseCertificate(p.x.raw)), [PROFILED]);
  assertReason(t, await reenroll(p, 'pin-a'), 403, /renew it on label "pinned"/);
  issuedCert(t, await reenroll(p, 'pin-a', 'pinned'));
  // labels without one write no certificatePolicies at all
  t.deepEqual(certificateProfiles(parseCertificate((await enrolled('plain-a')).x.raw)), []);
});
