// Grant patterns: `*` globs and {identity}, matched in linear time.
import test from 'ava';
import { Glob } from '../../src/policy/glob.js';

test('globs: anchored, case-insensitive, `*` matches any run including the empty one', (t) => {
  const g = new Glob('dev-*.plant.local');
  t.true(g.test('dev-1.plant.local', ''));
  t.true(g.test('DEV-.Plant.Local', ''));
  t.false(g.test('xdev-1.plant.local', ''));
  t.false(g.test('dev-1.plant.local.evil', ''));
  t.true(new Glob('*').test('', ''));
  t.true(new Glob('a*b*c').test('abc', ''));
  t.true(new Glob('a*b*c').test('axxbyybzc', ''));
  t.false(new Glob('a*b*c').test('acb', ''));
  t.false(new Glob('ab*ba').test('aba', ''), 'prefix and suffix may not overlap');
  t.true(new Glob('literal').test('LITERAL', ''));
  t.false(new Glob('literal').test('literals', ''));
});

test('globs: {identity} is the requester\'s name taken literally, its own `*` included', (t) => {
  const g = new Glob('{identity}-*');
  t.true(g.test('alice-laptop', 'alice'));
  t.false(g.test('bob-laptop', 'alice'));
  t.false(g.test('anything-x', '*'), 'a star in an identity is no wildcard');
  t.true(g.test('*-x', '*'));
});

test('security review: a 64 KB name against `*-*-*` patterns answers at once (no backtracking)', (t) => {
  const hostile = `${'-'.repeat(65_536)}x`;
  const patterns = ['*-*-*-*-*y', '*a*a*a*a*a*b', '{identity}*-*-*-*z'];
  // a backtracking regex takes minutes to hours here (the test then fails at ava's timeout); linear matching a few milliseconds
  for (const p of patterns) t.false(new Glob(p).test(hostile, 'a'));
});
