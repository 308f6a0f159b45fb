// The pair on disk: replaced as a unit through one rename, keys 0600, plain
// files from elsewhere adopted without a mismatched moment, leftovers of an
// interrupted write cleaned up without touching the live pair.
import test from 'ava';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PairStore } from '../../src/client/store.js';

const pair = (n: number) => ({ certPem: `CERT ${n}\n`, keyPem: `KEY ${n}\n` });

test.beforeEach(async (t) => {
  t.context = await mkdtemp(join(tmpdir(), 'estgw-store-'));
});
test.afterEach.always(async (t) => rm(t.context as string, { recursive: true, force: true }));

test('nothing stored reads as undefined', async (t) => {
  const dir = t.context as string;
  t.is(await new PairStore(join(dir, 'c.pem'), join(dir, 'k.pem')).read(), undefined);
});

test('write publishes a generation and points both live paths at it through `current`', async (t) => {
  const dir = t.context as string;
  const s = new PairStore(join(dir, 'cert.pem'), join(dir, 'keys', 'key.pem'));
  await s.write(pair(1));
  t.deepEqual(await s.read(), pair(1));
  t.is(await readFile(join(dir, 'cert.pem'), 'utf8'), 'CERT 1\n');
  t.is(await readFile(join(dir, 'keys', 'key.pem'), 'utf8'), 'KEY 1\n');
  t.true((await lstat(join(dir, 'cert.pem'))).isSymbolicLink());
  t.is(await readlink(join(dir, 'keys', 'key.pem')), '../.cert.pem.d/current/key.pem');
  t.is((await stat(join(dir, 'keys', 'key.pem'))).mode & 0o777, 0o600);
  t.is((await stat(join(dir, 'cert.pem'))).mode & 0o777, 0o644);
});

test('each write keeps only the new generation and the one before it', async (t) => {
  const dir = t.context as string;
  const s = new PairStore(join(dir, 'cert.pem'), join(dir, 'key.pem'));
  for (let i = 1; i <= 5; i++) await s.write(pair(i));
  t.deepEqual(await s.read(), pair(5));
  const gens = (await readdir(s.dataDir)).filter((e) => e.startsWith('g-'));
  t.is(gens.length, 2);
  const current = await readlink(join(s.dataDir, 'current'));
  const previous = gens.find((g) => g !== current)!;
  t.is(await readFile(join(s.dataDir, previous, 'cert.pem'), 'utf8'), 'CERT 4\n');
});

test('plain files written by another tool are adopted: the old pair stays readable as a pair throughout', async (t) => {
  const dir = t.context as string;
  await writeFile(join(dir, 'cert.pem'), 'OLD CERT\n');
  await writeFile(join(dir, 'key.pem'), 'OLD KEY\n', { mode: 0o600 });
  const s = new PairStore(join(dir, 'cert.pem'), join(dir, 'key.pem'));
  t.deepEqual(await s.read(), { certPem: 'OLD CERT\n', keyPem: 'OLD KEY\n' });
  await s.write(pair(2));
  t.deepEqual(await s.read(), pair(2));
  const gens = (await readdir(s.dataDir)).filter((e) => e.startsWith('g-'));
  t.is(gens.length, 2);
  const contents = await Promise.all(gens.map((g) => readFile(join(s.dataDir, g, 'cert.pem'), 'utf8')));
  t.true(contents.includes('OLD CERT\n'), 'the adopted pair is the previous generation');
});

test('leftovers of an interrupted write are removed; the live pair is untouched', async (t) => {
  const dir = t.context as string;
  const s = new PairStore(join(dir, 'cert.pem'), join(dir, 'key.pem'));
  await s.write(pair(1));
  // as if killed while publishing the next generation and while swapping links
  await mkdir(join(s.dataDir, 'g-zzz-half.tmp'));
  await writeFile(join(s.dataDir, 'g-zzz-half.tmp', 'key.pem'), 'KEY 2\n');
  await symlink('g-zzz-half', join(s.dataDir, 'current.abc.tmp'));
  await symlink('nowhere', join(dir, '.cert.pem.abc.tmp'));
  t.deepEqual(await s.read(), pair(1));
  await s.cleanup();
  t.deepEqual(await s.read(), pair(1));
  const left = [...(await readdir(s.dataDir)), ...(await readdir(dir))].filter((e) => e.endsWith('.tmp'));
  t.deepEqual(left, []);
});

test('a lone key without a certificate (a first write cut short) reads as no pair', async (t) => {
  const dir = t.context as string;
  await writeFile(join(dir, 'key.pem'), 'KEY\n');
  t.is(await new PairStore(join(dir, 'cert.pem'), join(dir, 'key.pem')).read(), undefined);
});
