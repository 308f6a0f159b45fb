// kill -9 of `estgw serve` (primary and workers) in the middle of an
// enrollment load, three times over one data directory: every certificate a
// client received is in the ledger, byte for byte, and the ledger still opens.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { buildName } from '../../src/est/name.js';
import { generateKey } from '../../src/pki/keys.js';
import { run, scratchDir } from '../helpers/cli.js';
import { DEV_AUTH, certsOf } from '../helpers/est.js';
import { httpsRequest } from '../helpers/http.js';
import { MAIN, childrenOf, killServed, serve } from '../helpers/serve-process.js';

test.after.always(killServed);

const ROUNDS = 3;
const CLIENTS = 6;
/** Certificates received per round before the kill: the load is running by then. */
const PER_ROUND = 6;

test('kill -9 during enrollment load, repeatedly: every certificate any client received is on record and the ledger opens', async (t) => {
  const tmp = await scratchDir('estgw-crash-');
  t.teardown(() => tmp.remove());
  const key = await generateKey('p256');
  const bodies = Array.from({ length: 16 }, (_, i) => encodeEstBase64(buildCsr({ subject: buildName([['CN', `crash-${i}`]]), privateKey: key })));
  const received = new Map<string, Buffer>();

  for (let round = 0; round < ROUNDS; round++) {
    const s = await serve([], tmp.dir, { workers: 2 });
    const caPem = await readFile(join(tmp.dir, 'ca', 'root', 'ca.cert.pem'), 'utf8');
    const before = received.size;
    let running = true;
    let n = 0;
    const client = async () => {
      while (running) {
        try {
          const res = await httpsRequest(`${s.url}/simpleenroll`, {
            ca: caPem,
            body: bodies[n++ % bodies.length]!,
            headers: { 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH },
          });
          if (res.status !== 200) continue;
          const cert = certsOf(res.body)[0]!;
          received.set(cert.serialNumber.toLowerCase().replace(/^(00)+/, ''), cert.raw);
        } catch {
          // the gateway was killed under this request
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    for (let i = 0; i < 400 && received.size < before + PER_ROUND; i++) await new Promise((r) => setTimeout(r, 50));
    t.true(received.size >= before + PER_ROUND, `round ${round}: the load got certificates`);
    // workers first, so requests die inside them; then the primary
    for (const pid of await childrenOf(s.child.pid!)) process.kill(pid, 'SIGKILL');
    s.child.kill('SIGKILL');
    await s.exited;
    running = false;
    await Promise.all(clients);
  }

  const exported = await run(process.execPath, [MAIN, 'certs', 'export', '--data-dir', tmp.dir], { timeoutMs: 60_000, env: { ...process.env, ESTGW_DATA_DIR: '' } });
  t.is(exported.code, 0, exported.stderr);
  const onRecord = new Map<string, string>(
    exported.stdout.toString().trim().split('\n').map((l) => {
      const r = JSON.parse(l) as { serial: string; pem: string };
      return [r.serial, r.pem];
    }),
  );
  const missing = [...received.keys()].filter((serial) => !onRecord.has(serial));
  t.deepEqual(missing, [], 'every certificate a client received is on record');
  for (const [serial, der] of received) t.true(new X509Certificate(onRecord.get(serial)!).raw.equals(der), `${serial} on record as received`);
  t.log(`${received.size} certificates received over ${ROUNDS} kills, ${onRecord.size} on record`);
});
