// A libest estserver top that holds enrollments (opt-in, LIBEST_BIN): `estserver
// -m SECONDS` answers the first request for a key with 202 and Retry-After
// SECONDS (at least 60), and signs the next one with the same key, its stand-in
// for a CA operator. The forwarding gateway passes the 202 and the top's
// Retry-After down unchanged, and the device's repeat is signed by the top.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../client/support/net.js';
import { scratchDir } from '../helpers/cli.js';
import { enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { LIBEST_BIN, type Peer, copyExampleCa, explainSkip, libest, startEstserver } from './libest.js';

explainSkip('est-gateway forwarding to a libest estserver -m (held enrollments)');

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let top: Peer;
let gw: TestGateway;
test.before(async () => {
  if (!LIBEST_BIN) return;
  tmp = await scratchDir('estgw-libest-top-held-');
  const ca = await copyExampleCa(tmp.dir);
  top = await startEstserver(ca, await freePort(), ['-m', '60']);
  await writeFile(tmp.path('up.pw'), 'estpwd\n');
  gw = await startTestGateway({
    labels: {
      default: {
        mode: 'forward',
        upstream: { url: `https://127.0.0.1:${top.port}/.well-known/est`, trust: join(ca, 'estCA', 'cacert.crt'), username: 'estuser', password_file: tmp.path('up.pw') },
      },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await top?.stop();
  await tmp?.remove();
});

libest('the top\'s 202 reaches the device with the top\'s Retry-After; the repeat with the same key is signed by the top', async (t) => {
  const first = await makeCsr('held-at-libest-top');
  const held = await enroll(gw, first.b64);
  t.is(held.status, 202, held.body.toString());
  t.is(held.headers['retry-after'], '60');
  t.like(gw.audit().filter((l) => l.op === 'simpleenroll').at(-1), { status: 202, subject: 'CN=held-at-libest-top' });

  const repeat = await makeCsr('held-at-libest-top', { key: first.key });
  const cert = issuedCert(t, await enroll(gw, repeat.b64));
  t.is(cert.issuer, 'CN=estExampleCA');
  t.is(cert.subject, 'CN=held-at-libest-top');
});
