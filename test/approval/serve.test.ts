// Issue 12 as an operator runs it: `estgw serve --config FILE` with two worker
// processes holds curl's enrollment in DATA_DIR/approvals, and
// `estgw requests --config FILE` (the same file) approves it.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPassword } from '../../src/auth/password.js';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { opensslCsr, run, scratchDir } from '../helpers/cli.js';
import { MAIN, killServed, serve } from '../helpers/serve-process.js';

test.after.always(killServed);

test('serve --config with two workers holds curl\'s request; requests --config on the same file approves; curl gets the certificate', async (t) => {
  const tmp = await scratchDir('estgw-approval-serve-');
  t.teardown(() => tmp.remove());
  const dataDir = tmp.path('data');
  const configFile = tmp.path('gateway.toml');
  await writeFile(configFile, `[server]
data_dir = ${JSON.stringify(dataDir)}

[approval]
retry_after = 30

[users.estuser]
password_hash = ${JSON.stringify(await hashPassword('estpwd'))}

[labels.default]
approval = "manual"
`);
  const s = await serve(['--config', configFile], dataDir, { workers: 2 });
  t.teardown(() => s.stop());
  const caFile = join(dataDir, 'ca', 'root', 'ca.cert.pem');
  const csr = await opensslCsr(tmp.dir, 'plc-curl', 'p256', '/CN=plc-curl');
  const curl = async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '-u', 'estuser:estpwd', '-D', '-', '--data-binary', `@${csr.b64File}`, '-H', 'Content-Type: application/pkcs10', `${s.url}/simpleenroll`]);
    const text = r.stdout.toString();
    const split = text.indexOf('\r\n\r\n');
    return { head: text.slice(0, split), body: text.slice(split + 4) };
  };
  const held = await curl();
  t.regex(held.head, /^HTTP\/1\.1 202 /);
  t.regex(held.head, /^Retry-After: 30\r?$/im);
  const id = /request ([0-9a-f]{32})/.exec(held.body)?.[1];
  t.truthy(id, held.body);
  // a new connection each time, which either worker may accept: both find the entry
  for (let i = 0; i < 3; i++) t.regex((await curl()).head, /^HTTP\/1\.1 202 /);

  const requests = (...args: string[]) => run(process.execPath, [MAIN, 'requests', ...args, '--config', configFile], { env: { ...process.env, REDIS_URL: '', ESTGW_DATA_DIR: '' }, timeoutMs: 60_000 });
  const list = await requests('list');
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout.toString(), new RegExp(`^${id}  pending .* polls 4  user:estuser  127\\.0\\.0\\.1  CN=plc-curl$`, 'm'));
  t.is((await requests('approve', id!)).code, 0);
  const issued = await curl();
  t.regex(issued.head, /^HTTP\/1\.1 200 /);
  const cert = new X509Certificate(parseCertsOnly(decodeEstBase64(Buffer.from(issued.body)))[0]!);
  t.is(cert.subject, 'CN=plc-curl');
});
