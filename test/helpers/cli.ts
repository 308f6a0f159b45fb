// External programs (openssl, curl, the estgw CLI) as tests run them: always
// with a timeout, never through a shell, the exit code and both streams kept.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function run(file: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { encoding: 'buffer', timeout: o.timeoutMs ?? 15_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, ...(o.env ? { env: o.env } : {}), ...(o.cwd ? { cwd: o.cwd } : {}) },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals; killed?: boolean }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr: stderr.toString('utf8'),
          timedOut: !!e?.killed,
        });
      },
    );
    child.stdin?.on('error', () => {}); // a program that exits without reading stdin
    child.stdin?.end(o.input ?? '');
  });
}

/** Runs and insists on exit code 0, returning stdout as text. */
export async function runOk(file: string, args: string[], o: RunOptions = {}): Promise<string> {
  const r = await run(file, args, o);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr}`);
  return r.stdout.toString('utf8');
}

export const openssl = (args: string[], o: RunOptions = {}) => runOk('openssl', args, o);

/** A scratch folder removed by the returned function. */
export async function scratchDir(prefix: string): Promise<{ dir: string; path: (name: string) => string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, path: (n) => join(dir, n), remove: () => rm(dir, { recursive: true, force: true }) };
}

export type OpensslKeyType = 'rsa2048' | 'rsa1024' | 'p256' | 'p384';

const keyArgs: Record<OpensslKeyType, string[]> = {
  rsa2048: ['-newkey', 'rsa:2048'],
  rsa1024: ['-newkey', 'rsa:1024'],
  p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
};

/**
 * `openssl req -new`: a key (KEY.key.pem) and a CSR, as DER (CSR.der) and as the
 * base64 body curl sends (CSR.b64, `openssl base64` = 64 columns, LF).
 */
export async function opensslCsr(
  dir: string,
  name: string,
  keyType: OpensslKeyType,
  subj: string,
  extra: string[] = [],
): Promise<{ keyFile: string; derFile: string; b64File: string; b64: string; der: Buffer }> {
  const keyFile = join(dir, `${name}.key.pem`);
  const derFile = join(dir, `${name}.csr.der`);
  const b64File = join(dir, `${name}.csr.b64`);
  await openssl(['req', '-new', ...keyArgs[keyType], '-nodes', '-keyout', keyFile, '-subj', subj, '-outform', 'DER', '-out', derFile, ...extra]);
  await openssl(['base64', '-in', derFile, '-out', b64File]);
  return { keyFile, derFile, b64File, b64: await readFile(b64File, 'utf8'), der: await readFile(derFile) };
}

/** A CSR for an existing key (renew). */
export async function opensslCsrForKey(dir: string, name: string, keyFile: string, subj: string, extra: string[] = []): Promise<string> {
  const b64File = join(dir, `${name}.csr.b64`);
  const derFile = join(dir, `${name}.csr.der`);
  await openssl(['req', '-new', '-key', keyFile, '-subj', subj, '-outform', 'DER', '-out', derFile, ...extra]);
  await openssl(['base64', '-in', derFile, '-out', b64File]);
  return b64File;
}

/** `openssl x509 -text -noout` of a PEM certificate. */
export async function certText(dir: string, certPem: string): Promise<string> {
  const f = join(dir, `text-${Math.random().toString(36).slice(2)}.pem`);
  await writeFile(f, certPem);
  return openssl(['x509', '-in', f, '-text', '-noout']);
}
