// docs/configuration.md is what the generator makes of the live schemas, and
// the generator refuses a key nobody described.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { documentSchema, reference } from '../../scripts/config-reference.js';
import { configSchema } from '../../src/config/schema.js';

test('docs/configuration.md is up to date with the schemas (run `npm run docs` when this fails)', async (t) => {
  const { text, undocumented } = reference();
  t.deepEqual(undocumented, [], 'every key has a description');
  t.is(await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8'), text);
});

test('every key of the gateway schema appears in the reference, with its default', (t) => {
  const { text } = reference();
  for (const key of ['listen', 'metrics_listen', 'cert_lifetime', 'cacerts_max_stale', 'renew_at', 'max_path_len', 'password_hash', 'post_renew']) {
    t.regex(text, new RegExp(`\\| \`${key}\` \\|`), key);
  }
  t.regex(text, /\| `cert_days` \| integer \(1–36500\) \| `30` \|/);
  t.true(text.includes('### `[[labels.NAME.grants]]`'));
  t.true(text.includes('### `[cas.NAME.request]`'));
});

test('a key or table without a description is reported by its path, and nothing else is', (t) => {
  const probe = z.object({
    server: z.object({ listen: z.string().describe('where'), secret_knob: z.number() }).describe('the listener'),
    extras: z.object({ a: z.string().describe('a') }),
    labels: z.record(z.string(), z.object({ mode: z.string() }).strict()).describe('labels'),
  });
  t.deepEqual(documentSchema(probe).undocumented.sort(), ['[extras]', 'labels.NAME.mode', 'server.secret_knob']);
  t.deepEqual(documentSchema(configSchema).undocumented, []);
});
