// The shipped three-layer hierarchy across real networks: four network
// namespaces made by this test (top, middle, bottom, device), joined by veth
// pairs only to their neighbours, with no routing between them. The bottom
// cannot reach the top at all, yet its devices get certificates the top
// signed; with the middle gone, the bottom issues islanded.
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromPemAll } from '../../src/est/base64.js';
import { run } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const tag = randomBytes(3).toString('hex');
const NS = { top: `estgw-${tag}-top`, middle: `estgw-${tag}-mid`, bottom: `estgw-${tag}-bot`, device: `estgw-${tag}-dev` };
type Ns = keyof typeof NS;
// 10.251.<link>.0/30: each link is its own subnet and no namespace forwards
const LINKS: Array<[Ns, Ns, number]> = [['top', 'middle', 1], ['middle', 'bottom', 2], ['bottom', 'device', 3]];
const ADDR = { top: '10.251.1.1', middle: '10.251.2.1', bottom: '10.251.3.1' };
const url = (l: keyof typeof ADDR) => `https://${ADDR[l]}:8085/.well-known/est`;

const ip = async (...args: string[]) => {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
};

async function makeNetwork(): Promise<void> {
  for (const n of Object.values(NS)) {
    await ip('netns', 'add', n);
    await ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  for (const [a, b, link] of LINKS) {
    const [va, vb] = [`e${tag}${link}a`, `e${tag}${link}b`];
    await ip('link', 'add', va, 'type', 'veth', 'peer', 'name', vb);
    await ip('link', 'set', va, 'netns', NS[a]);
    await ip('link', 'set', vb, 'netns', NS[b]);
    await ip('-n', NS[a], 'addr', 'add', `10.251.${link}.1/30`, 'dev', va);
    await ip('-n', NS[b], 'addr', 'add', `10.251.${link}.2/30`, 'dev', vb);
    await ip('-n', NS[a], 'link', 'set', va, 'up');
    await ip('-n', NS[b], 'link', 'set', vb, 'up');
  }
}

async function removeNetwork(): Promise<void> {
  // deleting a namespace deletes its end of each veth pair, and with it the pair
  for (const n of Object.values(NS)) await run('ip', ['netns', 'del', n]);
}

let ws: string;
const children = new Set<ChildProcess>();
const outputs = new Map<string, { out: string; err: string }>();

test.before(async () => {
  ws = await mkdtemp(join(tmpdir(), 'estgw-netns-'));
  await cp(join(ROOT, 'config', 'hierarchy'), join(ws, 'config', 'hierarchy'), { recursive: true });
  for (const d of ['middle', 'bottom', 'device']) await mkdir(join(ws, 'data', 'hierarchy', d), { recursive: true });
  await makeNetwork();
});

test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  await removeNetwork();
  if (ws) await rm(ws, { recursive: true, force: true });
});

const C = (f: string) => join('config', 'hierarchy', f);
const D = (f: string) => join('data', 'hierarchy', f);
const env = () => {
  const e = { ...process.env };
  for (const k of ['REDIS_URL', 'ESTGW_LISTEN', 'ESTGW_DATA_DIR']) delete e[k];
  return e;
};

/** `estgw ...` inside a namespace, once. */
const estgwIn = (ns: Ns, args: string[]) => run('ip', ['netns', 'exec', NS[ns], process.execPath, CLI, ...args], { cwd: ws, env: env(), timeoutMs: 30_000 });

/** `estgw serve` inside a namespace; resolves once its banner is out. */
async function serveIn(ns: Ns, name: string, args: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', NS[ns], process.execPath, CLI, 'serve', ...args], { cwd: ws, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const io = { out: '', err: '' };
  outputs.set(name, io);
  child.stdout!.on('data', (c: Buffer) => (io.out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (io.err += c.toString()));
  child.once('exit', () => children.delete(child));
  for (let i = 0; i < 300 && !/fingerprint/.test(io.err); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!/fingerprint/.test(io.err)) throw new Error(`${name} did not start:\n${io.err}\n${io.out}`);
  return child;
}

const stop = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', () => resolve()), c.kill('SIGTERM'))));
const audits = (name: string) => outputs.get(name)!.out.split('\n').filter((l) => l.includes('"msg":"est"')).map((l) => JSON.parse(l) as Record<string, unknown>);
const leafOf = async (file: string) => new X509Certificate(fromPemAll(await readFile(join(ws, file), 'utf8'), 'CERTIFICATE')[0]!);

test.serial('devices in the supervisory network get certificates the enterprise CA signs, through an operations layer they cannot see past; islanded without it', async (t) => {
  t.timeout(120_000);
  const ok = (r: Awaited<ReturnType<typeof estgwIn>>) => t.is(r.code, 0, r.stderr);

  // enterprise
  const top = await serveIn('top', 'top', ['--config', C('top.toml'), '--set', `server.listen="${ADDR.top}:8085"`, '--set', `server.tls_names=["${ADDR.top}"]`]);
  const fp = /fingerprint: (\S+)/.exec(outputs.get('top')!.err)![1]!;
  ok(await estgwIn('middle', ['cacerts', '--url', url('top'), '--pin', fp, '--trust', D('top-root.pem')]));
  ok(await estgwIn('middle', ['enroll', '--url', url('top'), '--label', 'ra', '--trust', D('top-root.pem'), '--user', 'middle-ra', '--pass-file', C('secrets/middle-ra.txt'), '--cn', 'middle-ra', '--out', D('middle/ra.cert.pem'), '--out-key', D('middle/ra.key.pem')]));

  // operations: its parent is the top, on the one link it has
  const middleArgs = ['--config', C('middle.toml'), '--set', `server.listen="${ADDR.middle}:8085"`, '--set', `server.tls_names=["${ADDR.middle}"]`,
    ...['default', 'ra', 'subca'].flatMap((l) => ['--set', `labels.${l}.upstream.url="${url('top')}"`])];
  let middle = await serveIn('middle', 'middle', middleArgs);
  await cp(join(ws, D('middle/ca/tls/ca.cert.pem')), join(ws, D('middle-tls.pem')));

  // supervisory: RA certificate and sub-CA through the middle
  ok(await estgwIn('bottom', ['enroll', '--url', url('middle'), '--label', 'ra', '--trust', D('middle-tls.pem'), '--user', 'bottom-ra', '--pass-file', C('secrets/bottom-ra.txt'), '--cn', 'bottom-ra', '--out', D('bottom/ra.cert.pem'), '--out-key', D('bottom/ra.key.pem')]));
  const bottomSets = ['--set', `server.listen="${ADDR.bottom}:8085"`, '--set', `server.tls_names=["${ADDR.bottom}"]`, '--set', `labels.default.upstream.url="${url('middle')}"`, '--set', `cas.bottom.request.url="${url('middle')}"`];
  ok(await estgwIn('bottom', ['ca', 'request-subca', '--config', C('bottom.toml'), ...bottomSets]));
  await serveIn('bottom', 'bottom', ['--config', C('bottom.toml'), ...bottomSets]);

  // the bottom has no route to the top: nothing but the middle is reachable from there
  const blocked = await estgwIn('bottom', ['cacerts', '--url', url('top'), '--trust', D('top-root.pem'), '--timeout', '3']);
  t.is(blocked.code, 1);
  t.regex(blocked.stderr, /ENETUNREACH|unreachable|cannot reach/i);

  // a device: trust by pin from the bottom, then enrollment
  ok(await estgwIn('device', ['cacerts', '--url', url('bottom'), '--pin', fp, '--trust', D('device/plant-root.pem')]));
  ok(await estgwIn('device', ['enroll', '--url', url('bottom'), '--trust', D('device/plant-root.pem'), '--user', 'estuser', '--pass-file', C('secrets/estuser.txt'), '--cn', 'netns-device-1', '--out', D('device/d1.pem')]));
  const d1 = await leafOf(D('device/d1.pem'));
  t.regex(d1.issuer, /CN=Plant issuing CA/);
  const atTop = audits('top').find((l) => l.subject === 'CN=netns-device-1' && l.op === 'simpleenroll');
  t.is(atTop?.identity, 'cert:ra/middle-ra', 'the top saw only the middle layer');
  t.is(atTop?.remote, '10.251.1.2', 'from the middle\'s address on the top link');
  t.is(audits('middle').find((l) => l.subject === 'CN=netns-device-1')?.identity, 'cert:ra/bottom-ra');

  // the middle goes away: the bottom issues islanded from its sub-CA
  await stop(middle);
  ok(await estgwIn('device', ['enroll', '--url', url('bottom'), '--trust', D('device/plant-root.pem'), '--user', 'estuser', '--pass-file', C('secrets/estuser.txt'), '--cn', 'netns-device-2', '--out', D('device/d2.pem')]));
  const d2 = await leafOf(D('device/d2.pem'));
  t.regex(d2.issuer, /CN=bottom layer CA/);
  t.true(audits('bottom').some((l) => l.subject === 'CN=netns-device-2' && l.islanded === true));

  // and back
  middle = await serveIn('middle', 'middle again', middleArgs);
  ok(await estgwIn('device', ['enroll', '--url', url('bottom'), '--trust', D('device/plant-root.pem'), '--user', 'estuser', '--pass-file', C('secrets/estuser.txt'), '--cn', 'netns-device-3', '--out', D('device/d3.pem')]));
  t.regex((await leafOf(D('device/d3.pem'))).issuer, /CN=Plant issuing CA/);
  await Promise.all([stop(top), stop(middle)]);
});
