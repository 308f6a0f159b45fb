// `estgw client run --config FILE`: the edge client's own TOML. Every key is
// documented where its default is set; [defaults] holds what the certificates
// share and each [certs.NAME] may override any of it. Paths are relative to the file.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError, formatIssues } from '../config/load.js';
import { type GeneralName, parseNameString } from '../est/name.js';
import { KEY_SPECS, type KeySpec } from '../pki/keys.js';
import { parseDurationMs, parseSpan } from '../util/durations.js';
import { DEFAULT_POLICY, type RenewalPolicy } from './schedule.js';
import type { CertSpec, ClientConfig } from './spec.js';

const span = (what: string, durationOnly = false) =>
  z.string().superRefine((s, ctx) => {
    try {
      if (durationOnly) parseDurationMs(s, what);
      else parseSpan(s, what);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });

const DEFAULT_CRL_REFRESH = '1h';
export const DEFAULT_CRL_REFRESH_MS = parseDurationMs(DEFAULT_CRL_REFRESH);

const shared = {
  url: z.string().url().optional().describe('EST base URL, https://HOST:PORT/.well-known/est.'),
  label: z.string().optional().describe('RFC 7030 §3.2.2 label (CA) on the server.'),
  trust: z.string().optional().describe('PEM trust anchor(s) for the server and for issued certificates. Required.'),
  pin: z.string().optional().describe('SHA-256 fingerprint of the root: when `trust` does not exist yet, /cacerts is fetched once unverified and its root stored there only if it matches (RFC 7030 §4.1.1).'),
  username: z.string().optional().describe('HTTP Basic user for enrollment.'),
  password: z.string().optional().describe('HTTP Basic password (prefer password_file).'),
  password_file: z.string().optional().describe('File whose first line is the Basic password.'),
  basic_auth: z.enum(['preemptive', 'challenge']).optional().describe('Send Basic on every request (`preemptive`, default, like aziot) or only after a 401 (`challenge`, like libest).'),
  bootstrap_cert: z.string().optional().describe('Bootstrap TLS client certificate (PEM): first enrollment, and the fallback when nothing newer is valid.'),
  bootstrap_key: z.string().optional().describe('Key of bootstrap_cert.'),
  identity: z.string().optional().describe('Name of the [certs.NAME] entry that is the EST identity certificate, presented in TLS when requesting the others.'),
  pop: z.enum(['auto', 'always', 'never']).optional().describe('tls-unique PoP linking (RFC 7030 §3.5): `auto` (default) when csrattrs asks for it.'),
  method: z.enum(['simplereenroll', 'simpleenroll']).optional().describe('How a valid certificate is renewed: `simplereenroll` (default, RFC 7030 §4.2.2) or `simpleenroll` (what aziot does; some servers need it).'),
  key_type: z.enum(KEY_SPECS as [KeySpec, ...KeySpec[]]).optional().describe('Key generated for new certificates: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519.'),
  threshold: span('threshold').optional().describe('When to renew: share of the lifetime passed ("80%", default) or time left before expiry ("60m", "2h", "7d").'),
  retry: span('retry').optional().describe('Wait between failed attempts: share of the lifetime ("4%", default) or a duration; clamped to 1 s..1 h.'),
  jitter: span('jitter').optional().describe('Renew up to this much earlier, at random ("2%" of the lifetime by default).'),
  rotate_key: z.boolean().optional().describe('New key at each renewal (default true).'),
  timeout: span('timeout', true).optional().describe('Per request ("30s" by default).'),
  post_renew: z.string().optional().describe('Shell command run after each renewal, with ESTGW_CERT_NAME, ESTGW_CERT_FILE and ESTGW_KEY_FILE set (e.g. to reload a service).'),
  reenroll_revoked: z.boolean().optional().describe('When the certificate is revoked (any reason, superseded too): enroll a new one with a new key through the bootstrap credential (bootstrap_cert, or username/password). Default false: revocation is how an operator cuts a device off, and a device holding the shared bootstrap credential would otherwise undo it; renewal then stops and status says why.'),
};

const certSchema = z
  .object({
    ...shared,
    subject: z.string().optional().describe('Subject as /O=Plant/CN=device-1 (or CN=device-1,O=Plant).'),
    common_name: z.string().optional().describe('Shorthand for subject = "/CN=...".'),
    dns: z.array(z.string()).default([]).describe('subjectAltName dNSName values.'),
    ips: z.array(z.string()).default([]).describe('subjectAltName iPAddress values.'),
    emails: z.array(z.string()).default([]).describe('subjectAltName rfc822Name values.'),
    uris: z.array(z.string()).default([]).describe('subjectAltName URI values.'),
    ca: z.boolean().default(false).describe('Request a CA certificate (basicConstraints CA:TRUE pathLen 0, keyCertSign), e.g. an IoT Edge CA.'),
    cert: z.string().describe('Where the certificate (leaf first, then its chain) is kept.'),
    key: z.string().describe('Where its private key is kept (mode 0600).'),
  })
  .strict();

/** The edge client's configuration file; docs/configuration.md is generated from it. */
export const clientConfigSchema = z
  .object({
    status_file: z.string().default('/var/lib/estgw-client/status.json').describe('JSON status read by `estgw client status`.'),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level of the JSON lines on stdout.'),
    metrics_listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/, 'must be HOST:PORT').optional().describe('Serve Prometheus metrics on HOST:PORT/metrics.'),
    crl: z
      .object({
        check: z.boolean().default(true).describe('Check each certificate against the CRLs its gateway serves (GET /crl/), at start and every `refresh`.'),
        refresh: span('crl.refresh', true).default(DEFAULT_CRL_REFRESH).describe('How often CRLs are fetched again; sooner when one nears its nextUpdate.'),
        out: z.string().optional().describe('Keep a PEM file of every CRL of the certificates\' chains here, for local relying parties (written atomically, refreshed before nextUpdate).'),
      })
      .strict()
      .default({ check: true, refresh: DEFAULT_CRL_REFRESH })
      .describe('Revocation: the CRLs the client fetches from its gateway.'),
    defaults: z.object(shared).strict().default({}).describe('What every [certs.NAME] shares; each may override any of it.'),
    certs: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'certificate names are letters, digits, _ . -'), certSchema).describe('The certificates to keep fresh.'),
  })
  .strict();

const DEFAULT_TIMEOUT_MS = 30_000;

export async function readTomlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  try {
    return parseToml(text);
  } catch (e) {
    throw new ConfigError([`${path}: not valid TOML: ${(e as Error).message.split('\n')[0]}`]);
  }
}

export async function readPasswordFile(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).split(/\r?\n/)[0]!;
  } catch (e) {
    throw new ConfigError([`password_file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
}

export function policyFrom(o: { threshold?: string | undefined; retry?: string | undefined; jitter?: string | undefined; rotate_key?: boolean | undefined }): RenewalPolicy {
  return {
    threshold: o.threshold ? parseSpan(o.threshold, 'threshold') : DEFAULT_POLICY.threshold,
    retry: o.retry ? parseSpan(o.retry, 'retry') : DEFAULT_POLICY.retry,
    jitter: o.jitter ? parseSpan(o.jitter, 'jitter') : DEFAULT_POLICY.jitter,
    rotateKey: o.rotate_key ?? DEFAULT_POLICY.rotateKey,
  };
}

export function subjectAltNames(o: { dns?: string[]; ips?: string[]; emails?: string[]; uris?: string[] }): GeneralName[] {
  return [
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(o.emails ?? []).map((value) => ({ type: 'email' as const, value })),
    ...(o.uris ?? []).map((value) => ({ type: 'uri' as const, value })),
  ];
}

export async function loadClientConfig(path: string): Promise<ClientConfig> {
  const raw = await readTomlFile(path);
  const r = clientConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(r.error.issues).map((p) => `${path}: ${p}`));
  const f = r.data;
  const base = dirname(resolve(path));
  const abs = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const problems: string[] = [];
  const certs: CertSpec[] = [];
  for (const [name, c] of Object.entries(f.certs)) {
    const v = { ...f.defaults, ...Object.fromEntries(Object.entries(c).filter(([, x]) => x !== undefined)) } as typeof c;
    const where = `${path}: certs.${name}`;
    if (!v.url) problems.push(`${where}.url: required (here or in [defaults])`);
    if (!v.trust) problems.push(`${where}.trust: required (here or in [defaults]): the PEM file of the EST trust anchor`);
    if (!v.subject && !v.common_name) problems.push(`${where}: subject or common_name is required`);
    if ((v.bootstrap_cert === undefined) !== (v.bootstrap_key === undefined)) problems.push(`${where}: bootstrap_cert and bootstrap_key go together`);
    if (v.identity !== undefined && !(v.identity in f.certs)) problems.push(`${where}.identity: no [certs.${v.identity}]`);
    if (v.password !== undefined && v.password_file !== undefined) problems.push(`${where}: password and password_file are exclusive`);
    let subject: Array<[string, string]> = [];
    try {
      subject = v.subject ? parseNameString(v.subject) : [['CN', v.common_name!]];
    } catch (e) {
      problems.push(`${where}.subject: ${(e as Error).message}`);
    }
    if (problems.length) continue;
    const password = v.password_file ? await readPasswordFile(abs(v.password_file)) : v.password;
    certs.push({
      name,
      url: v.url!,
      ...(v.label ? { label: v.label } : {}),
      trustFiles: [abs(v.trust!)],
      ...(v.pin ? { pin: v.pin } : {}),
      subject,
      subjectAltNames: subjectAltNames(v),
      ca: v.ca,
      keyType: v.key_type ?? 'p256',
      certFile: abs(v.cert),
      keyFile: abs(v.key),
      policy: policyFrom(v),
      method: v.method ?? 'simplereenroll',
      auth: {
        ...(v.username !== undefined ? { username: v.username } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(v.basic_auth ? { basicAuth: v.basic_auth } : {}),
        ...(v.bootstrap_cert ? { bootstrapCert: abs(v.bootstrap_cert), bootstrapKey: abs(v.bootstrap_key!) } : {}),
        ...(v.identity ? { identity: v.identity } : {}),
      },
      pop: v.pop ?? 'auto',
      ...(v.post_renew ? { postRenew: v.post_renew } : {}),
      reenrollRevoked: v.reenroll_revoked ?? false,
      timeoutMs: v.timeout ? parseDurationMs(v.timeout, 'timeout') : DEFAULT_TIMEOUT_MS,
    });
  }
  if (Object.keys(f.certs).length === 0) problems.push(`${path}: no [certs.NAME] to keep`);
  const owners = new Map<string, string>();
  for (const c of certs) {
    for (const [what, file] of [['cert', c.certFile], ['key', c.keyFile]] as const) {
      const other = owners.get(file);
      if (other) problems.push(`${path}: certs.${c.name}.${what}: ${file} is already used by ${other}`);
      else owners.set(file, `certs.${c.name}.${what}`);
    }
  }
  if (f.crl.out !== undefined && !f.crl.check) problems.push(`${path}: crl.out needs crl.check = true`);
  if (problems.length) throw new ConfigError(problems);
  const crl = f.crl.check ? { refreshMs: parseDurationMs(f.crl.refresh, 'crl.refresh'), ...(f.crl.out !== undefined ? { out: abs(f.crl.out) } : {}) } : undefined;
  return { certs, statusFile: abs(f.status_file), logLevel: f.log_level, ...(f.metrics_listen ? { metricsListen: f.metrics_listen } : {}), ...(crl ? { crl } : {}) };
}
