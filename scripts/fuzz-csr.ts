// A longer differential fuzzing run of the PKCS#10 codec against OpenSSL than the
// test suite's (test/helpers/csr-fuzz.ts says what is compared). Not part of npm test.
//   node dist/scripts/fuzz-csr.js [--count N] [--seed S] [--case CASE_SEED] [--out DIR]
// Without --seed a random one is drawn and printed; a run repeats with the same
// seed, and --case runs one case again (with fresh keys: the DER file is exact). Each finding is printed with its case seed and mutations, and its DER is
// written to DIR (default ./fuzz-findings) to minimise into test/fixtures/fuzz/.
// Exit status 1 when anything was found.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from '../test/helpers/csr-fuzz.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '5000' }, seed: { type: 'string' }, case: { type: 'string' }, out: { type: 'string', default: 'fuzz-findings' } },
});
const count = Number(values.count);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
const one = values.case === undefined ? undefined : Number(values.case);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed) || (one !== undefined && !Number.isSafeInteger(one))) {
  process.stderr.write('usage: fuzz-csr [--count N] [--seed S] [--case CASE_SEED] [--out DIR]\n');
  process.exit(2);
}

process.stdout.write(one === undefined ? `seed ${seed}, ${count} cases\n` : `case seed ${one}\n`);
const started = Date.now();
const { findings, accepted, refused } = await fuzz({
  ...(one === undefined ? { seed, count } : { caseSeeds: [one] }),
  onCase: (i) => {
    if ((i + 1) % 1000 === 0) process.stdout.write(`  ${i + 1} cases\n`);
  },
});
process.stdout.write(`${accepted} accepted by both, ${refused} refused by us, ${findings.length} finding(s) in ${Math.round((Date.now() - started) / 1000)} s\n`);
if (findings.length) {
  await mkdir(values.out, { recursive: true });
  for (const f of findings) {
    const file = join(values.out, `case-${f.seed}.der`);
    await writeFile(file, Buffer.from(f.der, 'base64'));
    process.stdout.write(`case seed ${f.seed} [${f.steps.join('; ')}]: ${f.problem}\n  ${file}\n`);
  }
  process.exitCode = 1;
}
