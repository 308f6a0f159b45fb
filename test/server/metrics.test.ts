// Gateway metrics: requests by label/op/status, and how each certificate was
// issued (local, forwarded by the parent, islanded while it was away).
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { scratchDir } from '../helpers/cli.js';
import { startTestGateway } from '../helpers/gateway.js';
import { DEV_AUTH, enroll, issuedCert } from '../helpers/est.js';
import { makeCsr } from '../helpers/pki.js';

const sample = async (gw: Awaited<ReturnType<typeof startTestGateway>>, re: RegExp): Promise<number | undefined> => {
  const m = re.exec(await gw.gateway.metrics.registry.metrics());
  return m ? Number(m[1]) : undefined;
};

test('forwarded while the parent answers, islanded once it is gone, local at the parent', async (t) => {
  const parent = await startTestGateway();
  const tmp = await scratchDir('estgw-metrics-');
  await writeFile(tmp.path('ra-password'), 'estpwd\n');
  const child = await startTestGateway({
    cas: { local: { subject: '/CN=child layer CA' } },
    server: { tls_issuer: 'local' },
    labels: { default: { mode: 'forward', fallback: 'issue', ca: 'local', upstream: { url: parent.url, trust: parent.caFile, username: 'estuser', password_file: tmp.path('ra-password'), connect_timeout: 1 } } },
  });
  t.teardown(() => Promise.all([child.close(), parent.close()]).then(() => tmp.remove()));
  const csr = async (cn: string) => (await makeCsr(cn)).b64;

  const first = await enroll(child, await csr('fwd-1'), { auth: DEV_AUTH });
  t.is(first.status, 200, first.body.toString());
  t.is(await sample(child, /^estgw_certificates_issued_total\{label="default",how="forwarded"\} (\d+)$/m), 1);
  t.is(await sample(parent, /^estgw_certificates_issued_total\{label="default",how="local"\} (\d+)$/m), 1);

  await parent.close();
  const island = issuedCert(t, await enroll(child, await csr('isl-1'), { auth: DEV_AUTH }));
  t.true(island.issuer.includes('child layer CA'));
  t.is(await sample(child, /^estgw_certificates_issued_total\{label="default",how="islanded"\} (\d+)$/m), 1);
  t.is(await sample(child, /^estgw_requests_total\{label="default",op="simpleenroll",status="200"\} (\d+)$/m), 2);
  const caNotAfter = Math.floor(Date.parse(new X509Certificate(child.gateway.pki.cas.get('local')!.certDer).validTo) / 1000);
  t.is(await sample(child, /^estgw_ca_not_after_seconds\{ca="local"\} (\d+)$/m), caNotAfter);
});
