// A longer differential fuzzing run of the CRL codec against `openssl crl` than
// the test suite's (test/helpers/crl-fuzz.ts says what is compared). Not part of npm test.
//   node dist/scripts/fuzz-crl.js [--count N] [--seed S]
// Exit status 1 when anything was found; each finding is printed with its case seed and DER.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRootCa } from '../src/pki/ca.js';
import { fuzzCrls } from '../test/helpers/crl-fuzz.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '2000' }, seed: { type: 'string' } } });
const count = Number(values.count);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write('usage: fuzz-crl [--count N] [--seed S]\n');
  process.exit(2);
}
const dir = await mkdtemp(join(tmpdir(), 'estgw-fuzz-crl-'));
try {
  const ca = await createRootCa('fuzz', join(dir, 'ca'), { subject: [['CN', 'crl fuzz CA']], days: 30 });
  process.stdout.write(`seed ${seed}, ${count} cases\n`);
  const { findings, accepted, refused, stricter } = await fuzzCrls({ seed, count, ca });
  process.stdout.write(`${accepted} accepted by both, ${refused} refused by us (${stricter} accepted by OpenSSL), ${findings.length} finding(s)\n`);
  for (const f of findings) process.stdout.write(`case seed ${f.seed} [${f.steps.join('; ')}]: ${f.problem}\n  ${f.der}\n`);
  if (findings.length) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
