#!/usr/bin/env node
// The `estgw` command.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashPassword } from '../auth/password.js';
import { ConfigError, applyOverrides, embeddedConfig, loadConfigFile } from '../config/load.js';
import { join } from 'node:path';
import { replaceSubordinateCa, requestSubordinateCa } from '../issuer/subca-request.js';
import { CA_CERT_FILE, caExists, sha256Fingerprint } from '../pki/ca.js';
import { caDir, preparePki, recordSetupCertificates } from '../server/pki-setup.js';
import { Ledger, ledgerCas } from '../ledger/ledger.js';
import { CLIENT_USAGE, clientUsageOf, runClientCli } from '../client/cli.js';
import { CERTS_USAGE, CertsUsageError, runCertsCli } from './certs.js';
import { REQUESTS_COMMANDS, REQUESTS_USAGE, runRequestsCli } from './requests.js';
import { serve, serveWorker } from '../server/serve.js';
import { type CommandUsage, overview, usageOf, wantsHelp } from '../client/usage.js';

const GATEWAY_COMMANDS: CommandUsage[] = [
  {
    words: 'serve',
    text: `serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--cert-days N] [--workers N|auto]
      [--set KEY=VALUE]..
      Without --config: config/standalone.toml plus the dev user estuser/estpwd (the tutorial's libest
      test server), state in ./data.
      --set overrides one configuration key, written as TOML: --set labels.default.cert_lifetime=2h
      Environment: ESTGW_LISTEN, ESTGW_DATA_DIR, REDIS_URL.`,
  },
  {
    words: 'check-config',
    text: `check-config FILE [--set KEY=VALUE]..
                           validate a configuration file without starting`,
  },
  {
    words: 'ca init',
    text: `ca init [--config FILE] [--data-dir DIR] [--set KEY=VALUE]..
                           create the configured CAs (a standalone root by default) and exit`,
  },
  {
    words: 'ca request-subca',
    text: `ca request-subca --config FILE [--ca NAME] [--force] [--set KEY=VALUE]..
                           obtain this layer's sub-CA (create = "request") from the parent layer;
                           --force replaces an existing one (the old one is kept beside it)`,
  },
  { words: 'passwd', text: 'passwd                     read a password (stdin or prompt) and print its scrypt hash for [users]' },
  { words: 'help', text: 'help [COMMAND..]           this overview, or the usage of one command (also: COMMAND --help)' },
  { words: 'version', text: 'version                    print the version' },
];

const USAGE = `usage: estgw <command> [options]

Gateway:
${overview(GATEWAY_COMMANDS)}

${CERTS_USAGE}
${REQUESTS_USAGE}
${CLIENT_USAGE}`;

/** The usage of the command the leading words name (`ca request-subca FILE --help` → ca request-subca). */
function usageFor(argv: string[]): string | undefined {
  const firstOption = argv.findIndex((a) => a.startsWith('-'));
  const words = firstOption < 0 ? argv : argv.slice(0, firstOption);
  for (const n of [2, 1]) {
    if (words.length < n) continue;
    const text = usageOf(GATEWAY_COMMANDS, words.slice(0, n)) ?? usageOf(REQUESTS_COMMANDS, words.slice(0, n)) ?? clientUsageOf(words.slice(0, n));
    if (text) return text;
  }
  return undefined;
}

class UsageError extends Error {}

function fail(msg: string, code = 2): number {
  process.stderr.write(`estgw: ${msg}\n`);
  return code;
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      'data-dir': { type: 'string' },
      'cert-days': { type: 'string' },
      workers: { type: 'string' },
      set: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const sets = values.set ?? [];
  const base = values.config ? await loadConfigFile(values.config, sets) : await embeddedConfig(sets);
  const certDays = values['cert-days'] === undefined ? undefined : Number(values['cert-days']);
  if (certDays !== undefined && !(Number.isInteger(certDays) && certDays > 0)) throw new UsageError('--cert-days takes a positive whole number');
  const workersArg = values.workers;
  const workers = workersArg === undefined ? undefined : workersArg === 'auto' ? ('auto' as const) : Number(workersArg);
  const listen = values.listen ?? process.env.ESTGW_LISTEN;
  const dataDir = values['data-dir'] ?? process.env.ESTGW_DATA_DIR;
  const cfg = applyOverrides(base, {
    ...(listen ? { listen } : {}),
    ...(dataDir ? { dataDir } : {}),
    ...(certDays !== undefined ? { certDays } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
  });
  await serve(cfg, { devCredentials: !values.config });
  return -1; // keeps running
}

async function loadForCommand(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' }, set: { type: 'string', multiple: true } },
    strict: true,
  });
  return loadConfigFor({ ...(values.config ? { config: values.config } : {}), ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), set: values.set ?? [] });
}

/** --config (or the embedded defaults), --set, then --data-dir or ESTGW_DATA_DIR. */
async function loadConfigFor(o: { config?: string; dataDir?: string; set: string[] }) {
  const base = o.config ? await loadConfigFile(o.config, o.set) : await embeddedConfig(o.set);
  const dataDir = o.dataDir ?? process.env.ESTGW_DATA_DIR;
  return applyOverrides(base, dataDir ? { dataDir } : {});
}

async function cmdRequestSubca(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, ca: { type: 'string' }, force: { type: 'boolean', default: false }, set: { type: 'string', multiple: true } },
    strict: true,
  });
  if (!values.config) throw new UsageError('ca request-subca needs --config FILE');
  const cfg = await loadConfigFile(values.config, values.set ?? []);
  const names = Object.entries(cfg.cas).filter(([n, c]) => c.create === 'request' && (values.ca === undefined || values.ca === n)).map(([n]) => n);
  if (names.length === 0) throw new UsageError(values.ca ? `no CA "${values.ca}" with create = "request"` : 'no CA with create = "request" in the configuration');
  for (const name of names) {
    const dir = caDir(cfg, name);
    if ((await caExists(dir)) && !values.force) {
      process.stdout.write(`exists  CA "${name}" ${join(dir, CA_CERT_FILE)} (use --force to replace it)\n`);
      continue;
    }
    const ca = await replaceSubordinateCa(name, dir, cfg.cas[name]!);
    process.stdout.write(`obtained CA "${name}" ${join(dir, CA_CERT_FILE)}: ${ca.cert.subject.split('\n').join(', ')}, valid until ${new Date(ca.cert.validTo).toISOString()}\n`);
  }
  return 0;
}

async function cmdCa(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'request-subca') return cmdRequestSubca(rest);
  if (sub !== 'init') throw new UsageError('usage: estgw ca init [--config FILE] [--data-dir DIR] | estgw ca request-subca --config FILE [--ca NAME] [--force]');
  const cfg = await loadForCommand(rest);
  const pki = await preparePki(cfg, { create: true, requestCa: (name, dir) => requestSubordinateCa(name, dir, cfg.cas[name]!) });
  // the TLS certificate and sub-CAs just signed go on record, as the gateway would put them at its start
  if (pki.cas.size) {
    const ledger = Ledger.open(cfg.server.data_dir, ledgerCas(cfg, pki.cas), { sync: cfg.server.ledger_sync });
    try {
      for (const r of await recordSetupCertificates(ledger, pki)) process.stdout.write(`on record: ${r.op} certificate signed by CA "${r.ca}"\n`);
    } finally {
      await ledger.close();
    }
  }
  for (const [name, ca] of pki.cas) {
    const fp = sha256Fingerprint(ca.chain.at(-1)!);
    process.stdout.write(
      `${pki.created.includes(name) ? 'created' : 'exists '} CA "${name}" ${join(caDir(cfg, name), CA_CERT_FILE)}\n` +
        `        subject ${ca.cert.subject.split('\n').join(', ')}, valid until ${new Date(ca.cert.validTo).toISOString()}\n` +
        `        root SHA-256 ${fp}\n`,
    );
  }
  return 0;
}

async function cmdCheckConfig(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { set: { type: 'string', multiple: true } }, allowPositionals: true, strict: true });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('check-config takes one FILE');
  const cfg = await loadConfigFile(file, values.set ?? []);
  process.stdout.write(`${file}: OK (${Object.keys(cfg.labels).length} label(s), ${Object.keys(cfg.cas).length} CA(s), ${Object.keys(cfg.users).length} user(s))\n`);
  return 0;
}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const text = readFileSync(0, 'utf8');
    return text.replace(/\r?\n$/, '');
  }
  const { createInterface } = await import('node:readline');
  const ask = (q: string) =>
    new Promise<string>((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      // keep the password off the screen
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
        if (s.startsWith(q)) process.stderr.write(q);
      };
      rl.question(q, (a) => {
        rl.close();
        process.stderr.write('\n');
        resolve(a);
      });
    });
  const a = await ask('password: ');
  const b = await ask('again: ');
  if (a !== b) throw new UsageError('passwords do not match');
  return a;
}

async function cmdPasswd(argv: string[]): Promise<number> {
  if (argv.length) throw new UsageError('passwd takes no arguments; it reads the password from stdin or a prompt');
  const pw = await readPassword();
  if (pw.length === 0) throw new UsageError('empty password');
  process.stdout.write(`${await hashPassword(pw)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // `help WORDS` and `WORDS --help`: the usage on stdout, exit 0, and nothing done
  const words = rest.filter((a) => !a.startsWith('-'));
  if (cmd === 'help' && words.length) {
    const text = usageFor(words);
    if (!text) return fail(`no command "${words.join(' ')}"\n${USAGE}`);
    process.stdout.write(text);
    return 0;
  }
  const text = wantsHelp(rest) ? usageFor(argv) : undefined;
  if (text) {
    process.stdout.write(text);
    return 0;
  }
  try {
    switch (cmd) {
      case 'serve':
        return await cmdServe(rest);
      case 'ca':
        return await cmdCa(rest);
      case 'check-config':
        return await cmdCheckConfig(rest);
      case 'passwd':
        return await cmdPasswd(rest);
      case 'certs':
        return await runCertsCli(rest, loadConfigFor);
      case 'requests':
        return await runRequestsCli(rest, loadConfigFor);
      case 'cacerts':
      case 'csrattrs':
      case 'enroll':
      case 'reenroll':
      case 'serverkeygen':
      case 'client':
        return await runClientCli(argv);
      case 'version':
      case '--version':
        process.stdout.write(`${JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        return fail(`unknown command "${cmd}"\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof ConfigError) return fail(`invalid configuration:\n  ${e.problems.join('\n  ')}`, 1);
    if (e instanceof UsageError || e instanceof CertsUsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) return fail((e as Error).message);
    return fail((e as Error).message ?? String(e), 1);
  }
}

const run = cluster.isWorker ? serveWorker().then(() => -1) : main(process.argv.slice(2));
run.then((code) => {
  if (code >= 0) process.exitCode = code;
});
