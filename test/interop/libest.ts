// Cisco libest's estclient, estserver and estproxy as real peers, opt-in:
// LIBEST_BIN is the directory holding the three programs (built outside this
// repository; nothing of libest is copied here). The estserver tests also need
// libest's example CA as its example/server/createCA.sh leaves it (estCA/,
// trustedcerts.crt, estExampleCA.cnf): LIBEST_CA_DIR, by default
// LIBEST_BIN/../../run/server. Each run works on a scratch copy of it.
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { access, cp, mkdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_ENTRY } from '../client/support/client-cli.js';
import { openssl, run } from '../helpers/cli.js';

export const LIBEST_BIN = process.env.LIBEST_BIN;

/** `test.serial` with LIBEST_BIN set, else `test.skip`. */
export const libest = LIBEST_BIN ? test.serial : test.skip;

/** One skipped test saying how to run the others, so a plain `npx ava` shows why they did not run. */
export function explainSkip(what: string): void {
  if (!LIBEST_BIN) test.skip(`libest interop (${what}): skipped, set LIBEST_BIN to the directory with estclient, estserver and estproxy (LIBEST_BIN=/work/peers/libest/bin)`, () => {});
}

const bin = (name: string) => join(LIBEST_BIN!, name);

export interface EstclientResult {
  /** stdout and stderr: estclient exits 0 even when the operation failed, so read this and the files. */
  output: string;
  /** The -o directory. */
  dir: string;
  file(name: string): Promise<string>;
}

/**
 * Runs estclient against 127.0.0.1:PORT with a fresh -o directory; `trust` is
 * the PEM it verifies the server with (EST_OPENSSL_CACERT).
 */
export async function estclient(port: number, trust: string, outDir: string, args: string[]): Promise<EstclientResult> {
  await mkdir(outDir, { recursive: true });
  const r = await run(bin('estclient'), ['-s', '127.0.0.1', '-p', String(port), '-o', outDir, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', EST_OPENSSL_CACERT: trust },
    timeoutMs: 60_000,
  });
  const output = `${r.stdout.toString()}\n${r.stderr}`;
  if (r.code !== 0) throw new Error(`estclient ${args.join(' ')} exited ${r.code ?? r.signal}: ${output.slice(-2000)}`);
  return { output, dir: outDir, file: (name) => readFile(join(outDir, name), 'utf8') };
}

/** estclient's own failure line, e.g. "Get CSR attribues failed with code 15 (EST_ERR_HTTP_NO_CONTENT)". */
export const failureOf = (r: EstclientResult): string | undefined => /.*failed with code.*/i.exec(r.output)?.[0];

export interface Peer {
  child: ChildProcess;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP on 127.0.0.1:port (bounded: a peer that never listens fails the test). */
async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before listening:\n${log()}`);
    const ok = await new Promise<boolean>((done) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        done(true);
      });
      s.on('error', () => done(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port} after 30 s:\n${log()}`);
}

async function startPeer(program: string, args: string[], cwd: string, env: Record<string, string>, port: number): Promise<Peer> {
  const child = spawn(bin(program), args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', EST_LISTEN_ADDR: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const peer: Peer = {
    child,
    port,
    log: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
    },
  };
  try {
    await listening(port, child, peer.log);
  } catch (e) {
    await peer.stop();
    throw new Error(`${program}: ${(e as Error).message}`);
  }
  return peer;
}

/** libest's example CA, copied to `dir`: estserver signs with `openssl ca` there and grows its database. */
export async function copyExampleCa(dir: string): Promise<string> {
  const src = resolve(process.env.LIBEST_CA_DIR ?? join(LIBEST_BIN!, '..', '..', 'run', 'server'));
  try {
    await access(join(src, 'estCA', 'cacert.crt'));
  } catch {
    throw new Error(`no libest example CA in ${src}: set LIBEST_CA_DIR to a directory prepared by libest's example/server/createCA.sh`);
  }
  const dst = join(dir, 'libest-ca');
  await cp(src, dst, { recursive: true });
  return dst;
}

/**
 * estserver on `port` with the example CA in `caDir`: HTTP Basic estuser/estpwd
 * (-b), PoP not enforced (libest's default); `extra` options after those.
 */
export const startEstserver = (caDir: string, port: number, extra: string[] = []): Promise<Peer> =>
  startPeer(
    'estserver',
    ['-c', 'estCA/private/estservercertandkey.pem', '-k', 'estCA/private/estservercertandkey.pem', '-r', 'estrealm', '-b', '-p', String(port), '-v', ...extra],
    caDir,
    { EST_TRUSTED_CERTS: './trustedcerts.crt', EST_CACERTS_RESP: './estCA/cacert.crt', EST_OPENSSL_CACONFIG: './estExampleCA.cnf' },
    port,
  );

/**
 * estproxy on `port` in front of 127.0.0.1:`upstreamPort`: one certificate for
 * both sides; `trustFile` verifies its clients and the server above.
 */
export const startEstproxy = (o: { cert: string; key: string; trustFile: string; port: number; upstreamPort: number; cwd: string }): Promise<Peer> =>
  startPeer(
    'estproxy',
    ['-c', o.cert, '-k', o.key, '-s', '127.0.0.1', '-p', String(o.upstreamPort), '-l', String(o.port), '-r', 'estrealm', '-v'],
    o.cwd,
    { EST_TRUSTED_CERTS: o.trustFile },
    o.port,
  );

/** A P-256 key in PEM at `path`, made by openssl: what a device brings to estclient -x. */
export async function deviceKey(path: string): Promise<string> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  return path;
}

/**
 * A gateway label issuing estproxy's one certificate (serverAuth, clientAuth,
 * cmcRA) to one named user, and the grant that lets the proxy relay for devices.
 */
export const ESTPROXY_USERS = { estuser: 'estpwd', 'proxy-admin': 'proxy-admin-pw' };
export const ESTPROXY_LABELS = {
  default: {
    reserved_names: ['*-ra', '* CA'],
    grants: [{ identity: ['user:estuser', 'cert:ra/estproxy'], common_names: ['*'] }],
  },
  estproxy: {
    ext_key_usage: ['serverAuth', 'clientAuth', 'cmcRA'],
    grants: [{ identity: 'user:proxy-admin', common_names: ['estproxy'], dns_names: ['localhost'], ip_addresses: ['127.0.0.1'] }],
  },
};

/** estproxy's certificate and key from a gateway configured with ESTPROXY_LABELS, over EST with `estgw enroll`. */
export async function estproxyCertificate(gw: { url: string; caFile: string }, cert: string, key: string): Promise<void> {
  const got = await run(process.execPath, [
    CLI_ENTRY, 'enroll', '--url', gw.url, '--label', 'estproxy', '--trust', gw.caFile, '--user', 'proxy-admin', '--pass', 'proxy-admin-pw',
    '--cn', 'estproxy', '--dns', 'localhost', '--ip', '127.0.0.1', '--out', cert, '--out-key', key,
  ], { timeoutMs: 60_000 });
  if (got.code !== 0) throw new Error(`estproxy's certificate: ${got.stderr}`);
}
