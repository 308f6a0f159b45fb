// Differential fuzzing of the hand-written PKCS#10 codec against OpenSSL (see
// test/helpers/csr-fuzz.ts): a few hundred generated and mutated requests per run,
// seeded so that a failure reproduces: ESTGW_FUZZ_SEED=<seed> ESTGW_FUZZ_COUNT=<n>.
// Longer runs: node dist/scripts/fuzz-csr.js --count 20000.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { disagreement, fuzz, opensslReading, ourReading } from '../helpers/csr-fuzz.js';

const SEED = Number(process.env.ESTGW_FUZZ_SEED ?? 0x5eed);
const COUNT = Number(process.env.ESTGW_FUZZ_COUNT ?? 300);

test(`parseCsr and openssl req agree on ${COUNT} generated and mutated requests (seed ${SEED}), but for the documented strictness`, async (t) => {
  t.timeout(120_000);
  const { findings, accepted, refused } = await fuzz({ seed: SEED, count: COUNT });
  t.log(`seed ${SEED}: ${accepted} accepted by both, ${refused} refused by us`);
  const shown = findings.slice(0, 5).map((f) => `case seed ${f.seed} [${f.steps.join('; ')}]: ${f.problem}\n  DER (base64): ${f.der}`);
  t.deepEqual(shown, [], `run seed ${SEED}: ${findings.length} finding(s)`);
  // a generator whose every output is refused would prove nothing
  t.true(accepted >= COUNT / 10, `${accepted} of ${COUNT} accepted`);
  t.true(refused >= COUNT / 4, `${refused} of ${COUNT} refused`);
});

const FIXTURES = new URL('../../../test/fixtures/fuzz/', import.meta.url);
const FOUND: Record<string, RegExp> = {
  'version-integer-padded.der': /INTEGER: not minimally encoded/,
  'othername-null-with-content.der': /otherName/,
};

test('what the fuzzer found stays fixed: each minimised input in test/fixtures/fuzz is refused, and OpenSSL cannot take it either', async (t) => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.der')).sort();
  t.deepEqual(files, Object.keys(FOUND).sort(), 'every fixture has its expected reason here');
  for (const f of files) {
    const der = readFileSync(new URL(f, FIXTURES));
    const ours = ourReading(der);
    t.false(ours.accepted, f);
    t.regex(ours.reason ?? '', FOUND[f]!, f);
    const theirs = await opensslReading(der);
    t.true(!theirs.accepted || !!theirs.extensions?.some((e) => e.value === '<Parse Error>'), `${f}: OpenSSL ${JSON.stringify(theirs)}`);
    t.is(disagreement(ours, theirs), undefined, f);
  }
});
