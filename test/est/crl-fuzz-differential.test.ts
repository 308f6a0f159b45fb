// Differential fuzzing of the CRL codec against `openssl crl` (see
// test/helpers/crl-fuzz.ts): generated, mutated and re-signed CRLs, seeded so a
// failure reproduces: ESTGW_FUZZ_SEED=<seed> ESTGW_FUZZ_COUNT=<n>.
// Longer runs: node dist/scripts/fuzz-crl.js --count 5000.
import test from 'ava';
import { createRootCa } from '../../src/pki/ca.js';
import { scratchDir } from '../helpers/cli.js';
import { fuzzCrls } from '../helpers/crl-fuzz.js';

const SEED = Number(process.env.ESTGW_FUZZ_SEED ?? 0xc41);
const COUNT = Number(process.env.ESTGW_FUZZ_COUNT ?? 200);

test(`what parseCrl + crlSignedBy accept, openssl crl accepts with the same serials, on ${COUNT} mutated CRLs (seed ${SEED})`, async (t) => {
  t.timeout(120_000);
  const tmp = await scratchDir('estgw-crl-fuzz-ca-');
  t.teardown(() => tmp.remove());
  const ca = await createRootCa('fuzz', tmp.path('ca'), { subject: [['O', 'Fuzz'], ['CN', 'crl fuzz CA']], days: 30 });
  const { findings, accepted, refused, stricter } = await fuzzCrls({ seed: SEED, count: COUNT, ca });
  t.log(`seed ${SEED}: ${accepted} accepted by both, ${refused} refused by us (${stricter} of them accepted by OpenSSL: our documented strictness)`);
  const shown = findings.slice(0, 5).map((f) => `case seed ${f.seed} [${f.steps.join('; ')}]: ${f.problem}\n  DER (base64): ${f.der}`);
  t.deepEqual(shown, [], `run seed ${SEED}: ${findings.length} finding(s)`);
  // a generator whose every output is refused, or accepted, would prove nothing
  t.true(accepted >= COUNT / 5, `${accepted} of ${COUNT} accepted`);
  t.true(refused >= COUNT / 5, `${refused} of ${COUNT} refused`);
});
