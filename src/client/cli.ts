// `estgw cacerts | csrattrs | enroll | reenroll | serverkeygen` and
// `estgw client run | status`. Exit codes: 0 done, 1 the operation failed,
// 2 bad usage or configuration, 75 (EX_TEMPFAIL) the server still holds the
// request for approval. A failure prints one line: `estgw: <reason>`.
import type { KeyObject } from 'node:crypto';
import type { Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError } from '../config/load.js';
import { EstError, isEstError } from '../errors.js';
import { decodeEstBase64, toPem } from '../est/base64.js';
import { buildCsr } from '../est/csr-build.js';
import { csrAttrValueText } from '../est/csrattrs.js';
import { buildName, parseNameString } from '../est/name.js';
import { OID } from '../est/oids.js';
import { KEY_SPECS, type KeySpec, generateKey, privateKeyPem } from '../pki/keys.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { type CommandUsage, overview, usageOf, wantsHelp } from './usage.js';
import { createLogger, type Logger } from '../util/log.js';
import { loadAziotConfig } from './aziot-config.js';
import { loadClientConfig, readPasswordFile, subjectAltNames } from './config.js';
import { ClientDaemon } from './daemon.js';
import { type CsrSource, EstClient, type EstClientOptions } from '../transport/est-client.js';
import { ClientMetrics } from './metrics.js';
import { readPairFiles } from './pair.js';
import type { ClientConfig } from './spec.js';
import { CrlRound, checkCertificate } from './revocation.js';
import { type StatusDoc, formatStatus, readStatus } from './status.js';
import { PairStore } from './store.js';
import { ensureTrust } from './trust.js';

const ONE_SHOT: CommandUsage[] = [
  {
    words: 'cacerts',
    text: `cacerts      --url URL (--trust FILE [--pin SHA256]) [--label L] [--out FILE]
             With --pin and a missing --trust FILE: fetch /cacerts unverified once, accept it only
             if its root has that SHA-256 fingerprint, store the root in FILE (RFC 7030 §4.1.1).`,
  },
  { words: 'csrattrs', text: 'csrattrs     --url URL --trust FILE [--label L] [auth]' },
  {
    words: 'enroll',
    text: `enroll       --url URL --trust FILE [--subject /O=../CN=.. | --cn NAME] [--dns NAME].. [--ip ADDR]..
             [--key-type p256|p384|rsa2048|rsa3072|rsa4096|ed25519] [--csr FILE] [auth] --out FILE [--out-key FILE]
             Without --subject and --cn the CN is this host's name (said on stderr).`,
  },
  { words: 'reenroll', text: 'reenroll     --url URL --trust FILE --cert FILE --key FILE [--rotate-key] --out FILE [--out-key FILE]' },
  {
    words: 'serverkeygen',
    text: `serverkeygen --url URL --trust FILE [--subject ..| --cn NAME] [auth] --out FILE --out-key FILE
             Without --subject and --cn the CN is this host's name (said on stderr).`,
  },
];
const AUTH = `  auth: [--user U (--pass P | --pass-file F)] [--basic preemptive|challenge] [--cert FILE --key FILE]
  also: [--pop auto|always|never] [--wait SECONDS (202 pending; default 300)] [--timeout SECONDS] [--verbose]`;
const DAEMON: CommandUsage[] = [
  { words: 'client run', text: 'client run    (--config FILE | --aziot-config /etc/aziot/config.toml [--out-dir DIR]) [--once]' },
  { words: 'client status', text: 'client status (--config FILE | --aziot-config FILE [--out-dir DIR] | --status-file FILE) [--json]' },
];
/** Each command's usage, as `estgw CMD --help` prints it; the one-shot commands with the auth options. */
const CLIENT_COMMANDS: CommandUsage[] = [...ONE_SHOT.map((c) => (c.words === 'cacerts' ? c : { ...c, text: `${c.text}\n${AUTH}` })), ...DAEMON];

export const CLIENT_USAGE = `Edge client:
${overview(ONE_SHOT)}
${AUTH.replace(/^/gm, '  ')}
${overview(DAEMON)}
`;

/** `usage: estgw ...` for a client command (or `client`: run and status), or undefined. */
export const clientUsageOf = (words: readonly string[]): string | undefined => usageOf(CLIENT_COMMANDS, words);

const EX_USAGE = 2;
const EX_TEMPFAIL = 75;
const DEFAULT_AZIOT_OUT_DIR = '/var/lib/estgw/aziot';

class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  label: { type: 'string' },
  trust: { type: 'string' },
  pin: { type: 'string' },
  user: { type: 'string' },
  pass: { type: 'string' },
  'pass-file': { type: 'string' },
  basic: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  subject: { type: 'string' },
  cn: { type: 'string' },
  dns: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  'key-type': { type: 'string' },
  csr: { type: 'string' },
  'rotate-key': { type: 'boolean' },
  out: { type: 'string' },
  'out-key': { type: 'string' },
  pop: { type: 'string' },
  wait: { type: 'string' },
  timeout: { type: 'string' },
  verbose: { type: 'boolean' },
  config: { type: 'string' },
  'aziot-config': { type: 'string' },
  'out-dir': { type: 'string' },
  'status-file': { type: 'string' },
  once: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: true }>>['values'];

const need = (v: Values, k: keyof Values, why = ''): string => {
  const x = v[k];
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${k} is required${why}`);
  return x;
};

function oneOf<T extends string>(v: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function seconds(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0)) throw new UsageError(`--${flag} takes a number of seconds`);
  return n;
}

const stderrLogger = (verbose: boolean | undefined): Logger => pino({ name: 'estgw', level: verbose ? 'debug' : 'warn' }, pino.destination(2));

async function clientOptions(v: Values, log: Logger): Promise<EstClientOptions> {
  const url = need(v, 'url');
  if (!v.trust) throw new UsageError('--trust FILE is required (with --pin to bootstrap it when missing)');
  if (v.pass !== undefined && v['pass-file'] !== undefined) throw new UsageError('--pass and --pass-file are exclusive');
  const password = v['pass-file'] !== undefined ? await readPasswordFile(v['pass-file']) : v.pass;
  if ((v.user === undefined) !== (password === undefined)) throw new UsageError('--user needs --pass or --pass-file (and the other way round)');
  if ((v.cert === undefined) !== (v.key === undefined)) throw new UsageError('--cert and --key go together');
  const basic = oneOf(v.basic, ['preemptive', 'challenge'] as const, 'basic');
  const pop = oneOf(v.pop, ['auto', 'always', 'never'] as const, 'pop');
  // last, since with --pin it may go to the network
  const anchors = await ensureTrust({ files: [v.trust], url, logger: log, ...(v.pin ? { pin: v.pin } : {}), ...(v.label ? { label: v.label } : {}) });
  return {
    url,
    trust: anchors.map((d) => toPem('CERTIFICATE', d)).join(''),
    pendingBudgetMs: seconds(v.wait, 'wait', 300) * 1000,
    timeoutMs: seconds(v.timeout, 'timeout', 30) * 1000,
    logger: log,
    ...(v.label ? { label: v.label } : {}),
    ...(v.user !== undefined && password !== undefined ? { username: v.user, password } : {}),
    ...(basic ? { basicAuth: basic } : {}),
    ...(pop ? { pop } : {}),
    ...(v.cert && v.key ? { clientCert: { cert: await readFile(v.cert), key: await readFile(v.key) } } : {}),
  };
}

async function writeOut(path: string | undefined, text: string): Promise<void> {
  if (path === undefined || path === '-') process.stdout.write(text);
  else await writeFileAtomic(path, text);
}

const pemChain = (certs: Buffer[]) => certs.map((d) => toPem('CERTIFICATE', d)).join('');

function subjectFrom(v: Values): Buffer {
  if (v.subject !== undefined && v.cn !== undefined) throw new UsageError('--subject and --cn are exclusive');
  if (v.subject !== undefined) return buildName(parseNameString(v.subject));
  if (v.cn !== undefined) return buildName([['CN', v.cn]]);
  // what libest's and globalsign's clients do without a name
  const cn = hostname();
  process.stderr.write(`estgw: no --cn or --subject: requesting CN=${cn}, this host's name\n`);
  return buildName([['CN', cn]]);
}

const keyTypeOf = (v: Values): KeySpec => oneOf(v['key-type'], KEY_SPECS, 'key-type') ?? 'p256';

function csrSource(subject: Buffer, key: KeyObject, v: Values): CsrSource {
  const sans = subjectAltNames({ dns: v.dns ?? [], ips: v.ip ?? [] });
  return (ctx) => buildCsr({ subject, privateKey: key, subjectAltNames: sans, ...(ctx.challengePassword !== undefined ? { challengePassword: ctx.challengePassword } : {}) });
}

async function withClient<T>(v: Values, fn: (c: EstClient, log: Logger) => Promise<T>): Promise<T> {
  const log = stderrLogger(v.verbose);
  const c = new EstClient(await clientOptions(v, log));
  try {
    return await fn(c, log);
  } finally {
    c.close();
  }
}

async function cmdCacerts(v: Values): Promise<number> {
  const certs = await withClient(v, (c) => c.cacerts());
  await writeOut(v.out, pemChain(certs));
  return 0;
}

async function cmdCsrattrs(v: Values): Promise<number> {
  const attrs = await withClient(v, (c) => c.csrattrs());
  const names: Record<string, string> = Object.fromEntries(Object.entries(OID).map(([k, o]) => [o, k]));
  const named = (text: string) => `${text}${names[text] ? ` ${names[text]}` : ''}`;
  const lines = attrs.map((a) => ('oid' in a ? named(a.oid) : `${named(a.type)} = ${a.values.map((x) => named(csrAttrValueText(x))).join(', ')}`));
  await writeOut(v.out, lines.length ? `${lines.join('\n')}\n` : '');
  return 0;
}

async function cmdEnroll(v: Values): Promise<number> {
  const out = need(v, 'out');
  if (v.csr !== undefined) {
    const der = await readCsrFile(v.csr);
    const r = await withClient(v, (c) => c.simpleenroll(der));
    await writeOut(out, pemChain([r.certificate, ...r.extra]));
    return 0;
  }
  const subject = subjectFrom(v);
  const key = await generateKey(keyTypeOf(v));
  const r = await withClient(v, (c) => c.simpleenroll(csrSource(subject, key, v)));
  await writeFileAtomic(keyOut(v, out), privateKeyPem(key), 0o600);
  await writeOut(out, pemChain([r.certificate, ...r.extra]));
  return 0;
}

/** --out-key, or the certificate's path with .key.pem; a key is never printed. */
function keyOut(v: Values, out: string): string {
  if (v['out-key'] !== undefined) return v['out-key'];
  if (out === '-') throw new UsageError('--out-key FILE is required when the certificate goes to stdout');
  return `${out.replace(/\.(pem|crt|cer)$/, '')}.key.pem`;
}

async function readCsrFile(path: string): Promise<Buffer> {
  return decodeEstBase64(await readFile(path), `CSR file ${path}`);
}

async function cmdReenroll(v: Values): Promise<number> {
  const out = need(v, 'out');
  const current = await readPairFiles(need(v, 'cert', ': the certificate to renew, presented in TLS'), need(v, 'key'));
  const key = v['rotate-key'] ? await generateKey(keyTypeOf(v)) : current.key;
  // RFC 7030 §4.2.2: Subject and SubjectAltName exactly as in the certificate being renewed
  const csr: CsrSource = (ctx) =>
    buildCsr({ subject: current.leaf.subjectDer, privateKey: key, subjectAltNames: current.leaf.subjectAltNames, ...(ctx.challengePassword !== undefined ? { challengePassword: ctx.challengePassword } : {}) });
  const r = await withClient(v, (c) => c.simplereenroll(csr));
  if (v['rotate-key'] || v['out-key']) await writeFileAtomic(keyOut(v, out), privateKeyPem(key), 0o600);
  await writeOut(out, pemChain([r.certificate, ...r.extra]));
  return 0;
}

async function cmdServerkeygen(v: Values): Promise<number> {
  const out = need(v, 'out');
  const outKey = need(v, 'out-key');
  const subject = subjectFrom(v);
  // The CSR is signed with a throwaway key: the server replaces the public key with the one it generates.
  const throwaway = await generateKey(keyTypeOf(v));
  const r = await withClient(v, (c) => c.serverkeygen(csrSource(subject, throwaway, v)));
  await writeFileAtomic(outKey, privateKeyPem(r.privateKey), 0o600);
  await writeOut(out, pemChain([r.certificate, ...r.extra]));
  return 0;
}

async function loadDaemonConfig(v: Values): Promise<ClientConfig> {
  if (v.config !== undefined && v['aziot-config'] !== undefined) throw new UsageError('--config and --aziot-config are exclusive');
  if (v.config !== undefined) return loadClientConfig(v.config);
  if (v['aziot-config'] !== undefined) return loadAziotConfig(v['aziot-config'], { outDir: v['out-dir'] ?? DEFAULT_AZIOT_OUT_DIR });
  throw new UsageError('--config FILE or --aziot-config FILE is required');
}

async function cmdClientRun(v: Values): Promise<number> {
  const cfg = await loadDaemonConfig(v);
  const logger = createLogger(v.verbose ? 'debug' : cfg.logLevel, 'estgw-client');
  const metrics = cfg.metricsListen ? new ClientMetrics() : undefined;
  const daemon = new ClientDaemon(cfg, { logger, ...(metrics ? { metrics } : {}) });
  if (v.once) {
    const reports = await daemon.runOnce();
    const failed = reports.filter((r) => !r.ok);
    for (const r of failed) process.stderr.write(`estgw: ${r.name}: ${r.error}\n`);
    logger.flush();
    return failed.length ? 1 : 0;
  }
  let server: Server | undefined;
  if (metrics && cfg.metricsListen) server = await metrics.listen(cfg.metricsListen);
  await daemon.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      process.off('SIGHUP', hup);
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
      daemon.stop().then(resolve, resolve);
    };
    const term = () => stop('SIGTERM');
    const int = () => stop('SIGINT');
    const hup = () => {
      logger.info('SIGHUP: reloading the configuration');
      loadDaemonConfig(v).then(
        (next) => daemon.reload(next),
        (e: Error) => logger.error({ err: e.message }, 'configuration not reloaded; keeping the running one'),
      );
    };
    process.on('SIGTERM', term);
    process.on('SIGINT', int);
    process.on('SIGHUP', hup);
  });
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  logger.flush();
  return 0;
}

async function cmdClientStatus(v: Values): Promise<number> {
  const cfg = v['status-file'] === undefined ? await loadDaemonConfig(v) : undefined;
  const doc = await readStatus(v['status-file'] ?? cfg!.statusFile);
  // with the configuration at hand, revocation is asked of the gateway now, not taken from the daemon's last check
  if (cfg?.crl) await checkRevocationNow(cfg, doc);
  process.stdout.write(v.json ? `${JSON.stringify(doc, null, 2)}\n` : formatStatus(doc, Date.now()));
  return 0;
}

async function checkRevocationNow(cfg: ClientConfig, doc: StatusDoc): Promise<void> {
  const round = new CrlRound(Date.now());
  await Promise.all(
    cfg.certs.map(async (spec) => {
      const entry = doc.certs.find((c) => c.name === spec.name);
      const pem = entry && (await new PairStore(spec.certFile, spec.keyFile).read());
      if (entry && pem) entry.revocation = await checkCertificate(spec, pem.certPem, round);
    }),
  );
}

const COMMANDS: Record<string, (v: Values) => Promise<number>> = {
  cacerts: cmdCacerts,
  csrattrs: cmdCsrattrs,
  enroll: cmdEnroll,
  reenroll: cmdReenroll,
  serverkeygen: cmdServerkeygen,
  'client run': cmdClientRun,
  'client status': cmdClientStatus,
};

/** Runs one client command; resolves to the process exit code. */
export async function runClientCli(argv: string[]): Promise<number> {
  let name = argv[0] ?? '';
  let rest = argv.slice(1);
  if (name === 'client') {
    name = `client ${argv[1] ?? ''}`;
    rest = argv.slice(2);
  }
  const cmd = COMMANDS[name];
  const help = wantsHelp(argv) ? clientUsageOf(argv.slice(0, argv[0] === 'client' && cmd ? 2 : 1)) : undefined;
  if (help) {
    process.stdout.write(help);
    return 0;
  }
  if (!cmd) {
    process.stderr.write(`estgw: unknown command "${argv.slice(0, name.startsWith('client') ? 2 : 1).join(' ')}"\n${CLIENT_USAGE}`);
    return EX_USAGE;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return await cmd(values);
  } catch (e) {
    const line = (s: string) => s.replace(/\s*\n\s*/g, '; ');
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`estgw: ${line((e as Error).message)}\n`);
      return EX_USAGE;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`estgw: ${line(e.message)}\n`);
      return EX_USAGE;
    }
    if (isEstError(e, 'pending')) {
      process.stderr.write(`estgw: ${line(e.message)}\n`);
      return EX_TEMPFAIL;
    }
    process.stderr.write(`estgw: ${line(e instanceof EstError ? e.message : `${(e as Error).message ?? e}`)}\n`);
    return 1;
  }
}
