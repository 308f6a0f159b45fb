// Every `estgw` subcommand answers --help (and -h) through the real CLI: its
// usage on stdout, nothing on stderr, exit 0, and nothing else done (no server
// started, no CA created, no password read).
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run, scratchDir } from '../helpers/cli.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const estgw = (args: string[], cwd: string) => run(process.execPath, [MAIN, ...args], { cwd, timeoutMs: 30_000, env: { ...process.env, REDIS_URL: '' } });

let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-help-');
});
test.after.always(async () => tmp?.remove());

// command words, and a word its usage must mention
const COMMANDS: Array<[string[], RegExp]> = [
  [['serve'], /--config FILE/],
  [['check-config'], /FILE/],
  [['ca'], /ca init[\s\S]*ca request-subca/],
  [['ca', 'init'], /--data-dir DIR/],
  [['ca', 'request-subca'], /--config FILE .*--force/],
  [['passwd'], /scrypt/],
  [['cacerts'], /--pin SHA256/],
  [['csrattrs'], /--url URL/],
  [['enroll'], /--cn NAME[\s\S]*host's name/],
  [['reenroll'], /--rotate-key/],
  [['serverkeygen'], /--out-key FILE/],
  [['client'], /client run[\s\S]*client status/],
  [['client', 'run'], /--aziot-config/],
  [['client', 'status'], /--status-file/],
  [['requests'], /requests list[\s\S]*requests approve[\s\S]*requests reject/],
  [['requests', 'list'], /--json/],
  [['requests', 'show'], /SHA-256 of the CSR/],
  [['requests', 'approve'], /--cert-days N/],
  [['requests', 'reject'], /--reason TEXT/],
  [['version'], /version/],
  [['help'], /COMMAND --help/],
];

for (const [words, mentions] of COMMANDS) {
  for (const flag of ['--help', '-h']) {
    test.serial(`estgw ${words.join(' ')} ${flag}: usage on stdout, exit 0`, async (t) => {
      const r = await estgw([...words, flag], tmp.dir);
      t.is(r.code, 0, r.stderr);
      t.is(r.stderr, '');
      const out = r.stdout.toString();
      t.true(out.startsWith(`usage: estgw ${words[0]}`), out);
      t.regex(out, mentions);
    });
  }
}

test.serial('estgw help COMMAND is COMMAND --help', async (t) => {
  const a = await estgw(['help', 'ca', 'request-subca'], tmp.dir);
  const b = await estgw(['ca', 'request-subca', '--help'], tmp.dir);
  t.is(a.code, 0, a.stderr);
  t.is(a.stdout.toString(), b.stdout.toString());
});

test.serial('--help does nothing else: serve starts no server, ca init creates no CA, passwd reads no password', async (t) => {
  // each would write ./data or wait for stdin; all three must return at once, leaving the folder empty
  for (const words of [['serve'], ['ca', 'init'], ['passwd'], ['client', 'run'], ['requests', 'approve']]) {
    const r = await estgw([...words, '--help'], tmp.dir);
    t.is(r.code, 0, `${words.join(' ')}: ${r.stderr}`);
  }
  t.deepEqual(await readdir(tmp.dir), []);
});

test.serial('an unknown command still exits 2 with the overview on stderr', async (t) => {
  const r = await estgw(['frobnicate', '--help'], tmp.dir);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown command "frobnicate"/);
});
