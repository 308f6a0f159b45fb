// Which certificates authenticate at a forwarding label: those issued through
// the parent's CA chain (its /cacerts), never those of the CA that merely
// vouches for the parent's TLS server certificate ([upstream] trust).
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { toPem } from '../../src/est/base64.js';
import { scratchDir } from '../helpers/cli.js';
import { leafCert } from '../helpers/client-certs.js';
import { enroll } from '../helpers/est.js';
import { startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';

test('a client certificate from the parent\'s TLS-only CA is 401 at the forwarding label; one from the parent\'s issuing chain is served', async (t) => {
  const tmp = await scratchDir('estgw-anchors-');
  const parent = await startTestGateway({
    cas: { root: { subject: '/CN=plant root' }, tls: { subject: '/CN=parent TLS only' } },
    server: { tls_issuer: 'tls' },
  });
  const tlsRoot = tmp.path('parent-tls.pem');
  await writeFile(tlsRoot, toPem('CERTIFICATE', parent.gateway.pki.cas.get('tls')!.certDer));
  await writeFile(tmp.path('pw'), 'estpwd\n');
  const child = await startTestGateway({
    labels: { default: { mode: 'forward', auth: ['cert'], upstream: { url: parent.url, trust: tlsRoot, username: 'estuser', password_file: tmp.path('pw') } } },
  });
  t.teardown(async () => {
    await child.close();
    await parent.close();
    await tmp.remove();
  });

  const viaTlsCa = await leafCert(parent.gateway.pki.cas.get('tls')!, 'tls-ca-client');
  const refused = await enroll(child, (await makeCsr('tls-ca-client')).b64, { cert: viaTlsCa.certPem, key: viaTlsCa.keyPem });
  t.is(refused.status, 401, refused.body.toString());

  const viaPlant = await leafCert(parent.gateway.pki.cas.get('root')!, 'plant-client');
  const served = await enroll(child, (await makeCsr('plant-client')).b64, { cert: viaPlant.certPem, key: viaPlant.keyPem });
  t.is(served.status, 200, served.body.toString());
});
