import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, embeddedConfig, loadConfigFile, validateConfig } from '../../src/config/load.js';

const problems = (raw: unknown): string[] => {
  try {
    validateConfig(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
};

test('an unknown key is named with its full path', (t) => {
  t.deepEqual(problems({ labels: { default: { cert_dayz: 3 } } }), ['labels.default.cert_dayz: unknown key']);
});

test('a value of the wrong type is named with its path', (t) => {
  const p = problems({ labels: { default: { cert_days: 'one' } } });
  t.is(p.length, 1);
  t.regex(p[0]!, /^labels\.default\.cert_days: /);
});

test('cross-references are checked: label CA, subordinate parent, label named like an operation', (t) => {
  t.true(problems({ labels: { x: { ca: 'nope' } } }).some((p) => p.startsWith('labels.x.ca: no CA named "nope"')));
  t.true(problems({ cas: { root: {}, sub: { create: 'subordinate' } } }).some((p) => p.startsWith('cas.sub.parent:')));
  t.true(problems({ labels: { cacerts: {} } }).some((p) => p.startsWith('labels.cacerts:')));
});

test('a plain password in [users] is refused: only scrypt hashes are stored', (t) => {
  t.true(problems({ users: { estuser: { password_hash: 'estpwd' } } }).some((p) => p.startsWith('users.estuser.password_hash:')));
  t.true(problems({ users: { estuser: { password: 'estpwd' } } }).some((p) => p.includes('users.estuser.password: unknown key')));
});

test('the embedded default is valid and carries the tutorial credentials hashed', async (t) => {
  const cfg = await embeddedConfig();
  t.is(cfg.server.listen, '127.0.0.1:8085');
  t.regex(cfg.users.estuser!.password_hash, /^\$scrypt\$/);
  t.is(cfg.labels.default!.cert_days, 30);
});

test('a file with broken TOML or a bad key fails with the file and key named', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'estgw-cfg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a.toml'), '[server\nlisten = 1');
  await t.throwsAsync(loadConfigFile(join(dir, 'a.toml')), { message: /not valid TOML/ });
  await writeFile(join(dir, 'b.toml'), '[server]\nlisten = "nohost"\n');
  await t.throwsAsync(loadConfigFile(join(dir, 'b.toml')), { message: /^server\.listen: must be HOST:PORT/ });
  await writeFile(join(dir, 'c.toml'), '[server]\ndata_dir = "state"\n');
  t.is((await loadConfigFile(join(dir, 'c.toml'))).server.data_dir, join(dir, 'state'));
});

test('--set overrides a key as a line of TOML; tables merge, a non-TOML value is a string, and the result is validated', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'estgw-cfg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'gw.toml');
  await writeFile(file, '[server]\ndata_dir = "state"\n\n[labels.default]\ncert_days = 7\nauth = ["cert"]\n');
  const cfg = await loadConfigFile(file, ['labels.default.cert_lifetime="90s"', 'labels.ops.cert_lifetime=2h', 'server.workers=3']);
  t.is(cfg.labels.default!.cert_lifetime, '90s');
  t.deepEqual(cfg.labels.default!.auth, ['cert'], 'the rest of the table is kept');
  t.is(cfg.labels.ops!.cert_lifetime, '2h');
  t.is(cfg.server.workers, 3);
  t.is(cfg.server.data_dir, join(dir, 'state'), 'paths stay relative to the file');
  await t.throwsAsync(loadConfigFile(file, ['labels.default.cert_lifetime="5s"']), { message: /^labels\.default\.cert_lifetime: must be at least 60s/ });
  await t.throwsAsync(loadConfigFile(file, ['labels.default.cert_lifetime="soon"']), { message: /labels\.default\.cert_lifetime: .*invalid/ });
  await t.throwsAsync(loadConfigFile(file, ['no-equals-sign']), { message: /expected KEY=VALUE/ });
  await t.throwsAsync(loadConfigFile(file, ['server.workers=0']), { message: /^server\.workers:/ });
});

test('every gateway configuration shipped in config/ validates', async (t) => {
  const { readdir } = await import('node:fs/promises');
  const root = join(process.cwd(), 'config');
  const files = [
    ...(await readdir(root)).filter((f) => f.endsWith('.toml')).map((f) => join(root, f)),
    ...(await readdir(join(root, 'hierarchy'))).filter((f) => f.endsWith('.toml') && f !== 'edge-client.toml').map((f) => join(root, 'hierarchy', f)),
  ];
  t.true(files.length >= 4);
  for (const f of files) await t.notThrowsAsync(loadConfigFile(f), f);
});

test('the shipped edge-client example is a valid client configuration', async (t) => {
  const { loadClientConfig } = await import('../../src/client/config.js');
  await t.notThrowsAsync(loadClientConfig(join(process.cwd(), 'config', 'hierarchy', 'edge-client.toml')));
});

test('security review: a grant for CA or RA certificates must name a role or one user; `*`, cert:NAME and user:* are refused', (t) => {
  const grant = (identity: string | string[], extra: Record<string, unknown> = {}) => problems({ labels: { x: { grants: [{ identity, common_names: ['*'], ...extra }], ...extra.label as object } } });
  for (const id of ['*', 'cert:bottom-ra', 'user:*', ['cert:ra/bottom-ra', 'cert:*']]) {
    const p = grant(id, { allow_ca: true });
    t.true(p.some((m) => m.startsWith('labels.x.grants[0].identity: ') && m.includes('names no role')), `${JSON.stringify(id)}: ${p.join('; ')}`);
  }
  for (const id of ['cert:ra/bottom-ra', 'cert:device/*', 'user:bottom-ra']) t.deepEqual(grant(id, { allow_ca: true }), [], id);
  // a label that issues id-kp-cmcRA is an RA grant whatever its grants say
  const ra = problems({ labels: { ra: { ext_key_usage: ['cmcRA', 'clientAuth'] } } });
  t.true(ra.some((m) => m.startsWith('labels.ra.grants[0].identity: ')), ra.join('; '));
  t.deepEqual(grant('*'), [], 'device grants may still say *');
  t.true(problems({ labels: { x: { grants: [{ identity: 'bottom-ra' }] } } }).some((m) => m.includes('must be *, user:NAME')));
});

test('approval: modes, exempt identity patterns, the [approval] table and its bounds are checked; manual stays off by default', async (t) => {
  t.true(problems({ labels: { default: { approval: 'sometimes' } } }).some((p) => p.startsWith('labels.default.approval:')));
  t.true(problems({ labels: { default: { grants: [{ approval: 'later' }] } } }).some((p) => p.startsWith('labels.default.grants[0].approval:')));
  t.true(problems({ labels: { default: { approval_exempt_identities: ['line-*'] } } }).some((p) => p.startsWith('labels.default.approval_exempt_identities[0]:')));
  t.true(problems({ approval: { expiry: '0s' } }).some((p) => p.startsWith('approval.expiry:')));
  t.true(problems({ approval: { keep_decided: '500ms' } }).some((p) => p.startsWith('approval.keep_decided:')));
  t.true(problems({ approval: { retry_after: 0 } }).some((p) => p.startsWith('approval.retry_after:')));
  t.true(problems({ approval: { hook: [] } }).some((p) => p.startsWith('approval.hook:')));
  t.deepEqual(problems({ labels: { default: { approval: 'manual', grants: [{ identity: 'user:boot', approval: 'auto' }] } }, approval: { expiry: '2h', hook: ['/bin/true'] } }), []);
  const cfg = await embeddedConfig();
  t.true(Object.values(cfg.labels).every((l) => l.approval === 'auto' && l.grants.every((g) => g.approval === undefined)));
  t.like(cfg.approval, { expiry: '7d', keep_decided: '1d', retry_after: 60 });
});
