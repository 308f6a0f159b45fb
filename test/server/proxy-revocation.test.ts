// [[proxy]] routes authenticate TLS client certificates too, so the one
// revocation check applies there: a certificate this layer's CA revoked (or
// one below a revoked CA) passes no route, with the reason; its sibling does.
import test from 'ava';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { toPem } from '../../src/est/base64.js';
import { createRootCa, ensureServerTls } from '../../src/pki/ca.js';
import { scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let gw: TestGateway;
let target: ReturnType<typeof createServer>;

test.before(async () => {
  tmp = await scratchDir('estgw-proxy-revocation-');
  // the gateway's own CA, made first so that the route can name it in client_trust
  const ca = await createRootCa('plant', tmp.path('plant-ca'), { subject: [['CN', 'plant CA']], days: 30 });
  await writeFile(tmp.path('plant-ca.pem'), toPem('CERTIFICATE', ca.certDer));
  const tls = await ensureServerTls(tmp.path('target-tls'), ca);
  target = createServer({ cert: tls.certChainPem, key: tls.keyPem }, (_req, res) => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('registry\n'));
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  gw = await startTestGateway({
    cas: { plant: { create: 'none', dir: tmp.path('plant-ca') } },
    server: { tls_issuer: 'plant' },
    labels: { default: { ca: 'plant' } },
    extra: {
      proxy: [{
        prefix: '/v2/', target: `https://127.0.0.1:${(target.address() as AddressInfo).port}`, trust: tmp.path('plant-ca.pem'),
        identities: ['cert:device/*'], client_trust: [tmp.path('plant-ca.pem')],
      }],
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  target?.closeAllConnections();
  target?.close();
  await tmp?.remove();
});

test('a certificate revoked in the ledger passes no [[proxy]] route, with serial, date and reason; its sibling does', async (t) => {
  const issue = async (cn: string) => {
    const csr = await makeCsr(cn);
    const cert = issuedCert(t, await enroll(gw, csr.b64));
    return { cert: cert.toString(), key: csr.keyPem, serial: cert.serialNumber.toLowerCase().replace(/^(00)+/, '') };
  };
  const revoked = await issue('edge-1');
  const sibling = await issue('edge-2');
  const get = (c: { cert: string; key: string }) => httpsRequest(`https://127.0.0.1:${gw.port}/v2/x`, { ca: gw.caPem, cert: c.cert, key: c.key });
  t.is((await get(revoked)).status, 200, 'admitted before the revocation');
  gw.gateway.ledger!.revoke(revoked.serial, 'keyCompromise', 'test');
  assertReason(t, await get(revoked), 403, new RegExp(`the client certificate \\(serial ${revoked.serial}\\) was revoked on \\S+: keyCompromise`));
  t.is((await get(sibling)).status, 200);
});
