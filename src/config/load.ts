// Reading, validating and resolving a configuration.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { hashPassword } from '../auth/password.js';
import { type Config, type UpstreamConfig, configSchema } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

const formatPath = (path: PropertyKey[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');

export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${formatPath([...i.path, k])}: unknown key`).join('\n');
    }
    return `${formatPath(i.path) || '(top level)'}: ${i.message}`;
  });
}

export function validateConfig(raw: unknown): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(r.error.issues));
  return r.data;
}

/** Relative paths in a file are relative to that file, as people expect. */
function resolvePaths(cfg: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  cfg.server.data_dir = abs(cfg.server.data_dir);
  if (cfg.server.tls_cert) cfg.server.tls_cert = abs(cfg.server.tls_cert);
  if (cfg.server.tls_key) cfg.server.tls_key = abs(cfg.server.tls_key);
  const upstream = (up: UpstreamConfig | undefined) => {
    if (!up) return;
    up.trust = abs(up.trust);
    if (up.cert) up.cert = abs(up.cert);
    if (up.key) up.key = abs(up.key);
    if (up.password_file) up.password_file = abs(up.password_file);
  };
  for (const ca of Object.values(cfg.cas)) {
    if (ca.dir) ca.dir = abs(ca.dir);
    upstream(ca.request);
  }
  for (const r of cfg.proxy) {
    if (r.trust) r.trust = abs(r.trust);
    if (r.cert) r.cert = abs(r.cert);
    if (r.key) r.key = abs(r.key);
    r.client_trust = r.client_trust.map(abs);
  }
  for (const label of Object.values(cfg.labels)) {
    label.client_trust = label.client_trust.map(abs);
    upstream(label.upstream);
  }
  return cfg;
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function mergeInto(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    const cur = target[k];
    if (isTable(cur) && isTable(v)) mergeInto(cur, v);
    else target[k] = v;
  }
}

/**
 * `--set KEY=VALUE` (repeatable), as a line of TOML: `labels.default.cert_days=7`,
 * `labels.ops.cert_lifetime="2h"`, `server.workers="auto"`. A value that is not
 * TOML is taken as a string, so `--set labels.default.cert_lifetime=2h` works too.
 * Tables merge; arrays and values replace.
 */
export function applySettings(raw: unknown, settings: readonly string[]): unknown {
  if (settings.length === 0) return raw;
  const out = isTable(raw) ? structuredClone(raw) : {};
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    const key = eq > 0 ? setting.slice(0, eq).trim() : '';
    if (!key) throw new ConfigError([`--set ${setting}: expected KEY=VALUE`]);
    const value = setting.slice(eq + 1).trim();
    let patch: Record<string, unknown>;
    try {
      patch = parseToml(`${key} = ${value}`);
    } catch {
      try {
        patch = parseToml(`${key} = ${JSON.stringify(value)}`);
      } catch (e) {
        throw new ConfigError([`--set ${setting}: ${(e as Error).message.split('\n')[0]}`]);
      }
    }
    mergeInto(out, patch);
  }
  return out;
}

async function readToml(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${path}: ${(e as Error).message}`]);
  }
  try {
    return parseToml(text);
  } catch (e) {
    throw new ConfigError([`${path}: not valid TOML: ${(e as Error).message.split('\n')[0]}`]);
  }
}

export async function loadConfigFile(path: string, settings: readonly string[] = []): Promise<Config> {
  return resolvePaths(validateConfig(applySettings(await readToml(path), settings)), dirname(resolve(path)));
}

export const DEV_USER = 'estuser';
export const DEV_PASSWORD = 'estpwd';

/** The shipped config/standalone.toml (in package.json "files"). */
export const STANDALONE_CONFIG = fileURLToPath(new URL('../../../config/standalone.toml', import.meta.url));

/**
 * The embedded default (`npm start`, `estgw serve` without --config): exactly
 * config/standalone.toml plus the dev user estuser/estpwd (hashed at start like
 * any other), the libest test server's credentials. Its relative paths are read
 * as if the file sat in ./config, where `npm start` finds it: state goes to
 * ./data of the working directory, wherever the command runs.
 */
export async function embeddedConfig(settings: readonly string[] = []): Promise<Config> {
  const raw = await readToml(STANDALONE_CONFIG);
  raw.users = { ...(raw.users as Record<string, unknown> | undefined), [DEV_USER]: { password_hash: await hashPassword(DEV_PASSWORD) } };
  return resolvePaths(validateConfig(applySettings(raw, settings)), resolve('config'));
}

export interface Overrides {
  listen?: string;
  dataDir?: string;
  certDays?: number;
  workers?: number | 'auto';
  redisUrl?: string;
}

/** Command-line flags and environment win over the file; validated again. */
export function applyOverrides(cfg: Config, o: Overrides): Config {
  const next = structuredClone(cfg);
  if (o.listen !== undefined) next.server.listen = o.listen;
  if (o.dataDir !== undefined) next.server.data_dir = resolve(o.dataDir);
  if (o.workers !== undefined) next.server.workers = o.workers;
  if (o.certDays !== undefined) {
    for (const l of Object.values(next.labels)) {
      l.cert_days = o.certDays;
      delete l.cert_lifetime;
    }
  }
  if (o.redisUrl !== undefined) next.redis.url = o.redisUrl;
  return validateConfig(next);
}
