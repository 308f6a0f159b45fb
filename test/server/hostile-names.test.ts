// Security review: one authenticated CSR with a huge name against `*-*-*`
// grants is answered at once, and the name is not echoed whole into the
// reason or the audit line.
import test from 'ava';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { assertReason, enroll } from '../helpers/est.js';
import { makeCsr } from '../helpers/pki.js';

let gw: TestGateway;
test.before(async () => {
  gw = await startTestGateway({
    server: { body_limit: 1024 * 1024 },
    labels: { default: { grants: [{ identity: '*', common_names: ['*-*-*-*y'], dns_names: ['*-*-*-*-*y'], uris: ['*a*a*a*a*b'] }] } },
  });
});
test.after.always(async () => gw?.close());

test('a 64 KB CN, dNSName or URI against star-heavy grants: refused with a short reason, in the body and the audit line', async (t) => {
  const long = `${'-'.repeat(65_536)}x`;
  const cases = [
    await makeCsr(long),
    await makeCsr('ok-x-y-zy', { subjectAltNames: [{ type: 'dns', value: `a${long}` }] }),
    await makeCsr('ok-x-y-zy', { subjectAltNames: [{ type: 'uri', value: `urn:${'a'.repeat(65_536)}` }] }),
  ];
  for (const csr of cases) {
    const res = await enroll(gw, csr.b64);
    t.true(res.status === 400 || res.status === 403, `${res.status}`);
    assertReason(t, res, res.status);
    t.true(res.body.length < 400, `reason of ${res.body.length} bytes`);
  }
  const reasons = gw.audit().map((l) => String(l.reason ?? ''));
  t.true(reasons.length >= 3 && reasons.every((r) => r.length < 400), reasons.map((r) => r.length).join(','));
});

test('control characters in a refused name are escaped in the reason, never written raw', async (t) => {
  const res = await enroll(gw, (await makeCsr('evil\r\nX-Injected: 1\u0000')).b64);
  t.true(res.status === 400 || res.status === 403);
  t.false(/[\r\u0000]/.test(res.body.toString('utf8').trimEnd()), JSON.stringify(res.body.toString()));
  t.is(res.headers['x-injected'], undefined);
});
