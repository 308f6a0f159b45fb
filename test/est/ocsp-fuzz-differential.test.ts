// Differential fuzzing of the OCSP request parser against `openssl ocsp
// -reqin -req_text` (see test/helpers/ocsp-fuzz.ts): generated, tree-edited and
// byte-mutated requests, seeded so a failure reproduces:
// ESTGW_FUZZ_SEED=<seed> ESTGW_FUZZ_COUNT=<n>.
import test from 'ava';
import { fuzzOcspRequests } from '../helpers/ocsp-fuzz.js';

const SEED = Number(process.env.ESTGW_FUZZ_SEED ?? 0x0c5b);
const COUNT = Number(process.env.ESTGW_FUZZ_COUNT ?? 200);

test(`what parseOcspRequest accepts, openssl ocsp parses with the same serials and nonce, on ${COUNT} mutated requests (seed ${SEED})`, async (t) => {
  t.timeout(120_000);
  const { findings, accepted, refused, stricter } = await fuzzOcspRequests({ seed: SEED, count: COUNT });
  t.log(`seed ${SEED}: ${accepted} accepted by both, ${refused} refused by us (${stricter} of them parsed by OpenSSL: our documented strictness)`);
  const shown = findings.slice(0, 5).map((f) => `case seed ${f.seed} [${f.steps.join('; ')}]: ${f.problem}\n  DER (base64): ${f.der}`);
  t.deepEqual(shown, [], `run seed ${SEED}: ${findings.length} finding(s)`);
  // a generator whose every output is refused, or accepted, would prove nothing
  t.true(accepted >= COUNT / 5, `${accepted} of ${COUNT} accepted`);
  t.true(refused >= COUNT / 5, `${refused} of ${COUNT} refused`);
});
