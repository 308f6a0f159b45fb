// kill -9 at random points of a renewal, many times: the key and certificate on
// disk must always be a matching pair that verifies. Each run renews (the
// threshold exceeds the lifetime, so the certificate is always due) with a new key.
import test from 'ava';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPairFiles } from '../../src/client/pair.js';
import { spkiDer } from '../../src/pki/keys.js';
import { startTestGateway } from '../helpers/gateway.js';
import { CLI_ENTRY } from './support/client-cli.js';

const KILLS = 25;

type Kill = { afterMs: number } | { watch: string[]; delayMs: number };

/** Runs `client run --once`; kills it after a time, or a few ms after the first change in a watched directory. */
function runClient(config: string, kill?: Kill): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI_ENTRY, 'client', 'run', '--config', config, '--once'], { stdio: 'ignore' });
    let timer: NodeJS.Timeout | undefined;
    let watchers: FSWatcher[] = [];
    const unwatch = () => {
      for (const w of watchers) w.close();
      watchers = [];
    };
    if (kill && 'afterMs' in kill) timer = setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
    if (kill && 'watch' in kill) {
      watchers = kill.watch.map((d) =>
        watch(d, { recursive: true }, () => {
          if (timer) return;
          unwatch();
          timer = setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
        }),
      );
    }
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      unwatch();
      resolve({ code, signal, ms: Date.now() - started });
    });
  });
}

test('kill -9 at random points of renewals never leaves a mismatched or unverifiable pair', async (t) => {
  t.timeout(50_000);
  const dir = await mkdtemp(join(tmpdir(), 'estgw-crash-'));
  const gw = await startTestGateway();
  try {
    const config = join(dir, 'client.toml');
    await writeFile(config, `
status_file = "state/status.json"
log_level = "silent"
[defaults]
url = "${gw.url}"
trust = "${gw.caFile}"
username = "estuser"
password = "estpwd"
threshold = "3650d"
rotate_key = true
[certs.dev]
common_name = "crash-dev"
cert = "out/cert.pem"
key = "keys/key.pem"
`);
    const certFile = join(dir, 'out', 'cert.pem');
    const keyFile = join(dir, 'keys', 'key.pem');
    const root = new X509Certificate(gw.caPem);
    const check = async (what: string) => {
      const p = await readPairFiles(certFile, keyFile); // throws if the key does not match
      const x = new X509Certificate(p.certPem);
      t.true(x.verify(root.publicKey), `${what}: verifies`);
      t.is(x.subject, 'CN=crash-dev');
      t.true(Date.parse(x.validTo) > Date.now(), `${what}: valid`);
      return { serial: x.serialNumber, spki: spkiDer(p.key).toString('hex') };
    };

    const first = await runClient(config);
    t.is(first.code, 0);
    let last = await check('first enrollment');
    const renewed = new Set([last.serial]);
    let full = first.ms;
    let killedMidway = 0;
    for (let i = 0; i < KILLS; i++) {
      // Even runs: killed 0-10 ms after the first change under the certificate and key directories,
      // i.e. inside the write of the new pair, however it is done. Odd runs: at a random point of the whole run.
      const kill: Kill = i % 2 === 0 ? { watch: [join(dir, 'out'), join(dir, 'keys')], delayMs: Math.floor(Math.random() * 11) } : { afterMs: Math.round(full * (0.3 + Math.random() * 0.8)) };
      const r = await runClient(config, kill);
      if (r.signal === 'SIGKILL') killedMidway++;
      else full = Math.max(full, r.ms);
      const now = await check(`run ${i} (${JSON.stringify(kill)})`);
      if (now.serial !== last.serial) {
        t.not(now.spki, last.spki, 'a renewed certificate comes with its new key');
        renewed.add(now.serial);
      }
      last = now;
    }
    t.log(`${KILLS} runs, ${killedMidway} killed before exiting, ${renewed.size - 1} renewals landed`);
    t.true(killedMidway >= KILLS / 3, 'most runs were killed before they finished');
    const after = await runClient(config);
    t.is(after.code, 0, 'a clean run afterwards still renews');
    t.not((await check('after')).serial, last.serial);
  } finally {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  }
});
