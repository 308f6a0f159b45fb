// Every relative link and image in the project's Markdown points at a file that exists.
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const FILES = ['README.md', 'bench/README.md', 'deploy/README.md', 'config/hierarchy/README.md', 'diagrams/README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

test('relative links in README.md, docs/ and the folder READMEs resolve', (t) => {
  const broken: string[] = [];
  let seen = 0;
  for (const f of FILES) {
    const text = readFileSync(join(ROOT, f), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (!target || /^[a-z]+:/i.test(target)) continue;
      seen++;
      if (!existsSync(resolve(ROOT, dirname(f), target))) broken.push(`${f}: ${m[1]}`);
    }
  }
  t.true(seen >= 15, `only ${seen} relative links found`);
  t.deepEqual(broken, []);
});

test('the README embeds every diagram', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const svg of readdirSync(join(ROOT, 'diagrams')).filter((f) => f.endsWith('.svg'))) t.true(readme.includes(`(diagrams/${svg})`), svg);
});
