// RFC 7030 §4.5.2 as clarified by RFC 9908 §3.2: /csrattrs tells the client what
// the label's policy accepts (key types with their curve or RSA size, the
// signature algorithm, challengePassword for PoP linking, extra OIDs). Read back
// by the project's own parser and client CLI and by real `openssl asn1parse`.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { type CsrAttr, csrAttrValueText, parseCsrAttrs } from '../../src/est/csrattrs.js';
import { OID } from '../../src/est/oids.js';
import { validateConfig } from '../../src/config/load.js';
import { CLI_ENTRY } from '../client/support/client-cli.js';
import { openssl, run, scratchDir } from '../helpers/cli.js';
import { assertEstBase64, get } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-csrattrs-');
  gw = await startTestGateway({
    labels: {
      default: {},
      pop: { require_pop: true, key_types: ['p384'], serverkeygen_key: 'p384', csr_attributes: ['1.3.6.1.1.1.1.22'] },
      rsa: { key_types: ['rsa'], rsa_min_bits: 3072, serverkeygen_key: 'rsa3072' },
      ed: { key_types: ['ed25519', 'p521'], serverkeygen_key: 'ed25519' },
      quiet: { csrattrs: 'none' },
    },
  });
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

/** Attributes as text: `OID` or `TYPE = v1, v2` with OIDs dotted and INTEGERs in decimal. */
const asText = (attrs: CsrAttr[]) => attrs.map((a) => ('oid' in a ? a.oid : `${a.type} = ${a.values.map(csrAttrValueText).join(', ')}`));

async function csrattrs(label?: string): Promise<{ der: Buffer; attrs: string[] }> {
  const res = await get(gw, 'csrattrs', label);
  if (res.status !== 200) throw new Error(`csrattrs ${label ?? '(default)'}: ${res.status} ${res.body}`);
  const der = decodeEstBase64(res.body);
  return { der, attrs: asText(parseCsrAttrs(der)) };
}

test('§4.5.2 + RFC 9908: the default label lists rsaEncryption with its minimum size, id-ecPublicKey with both curves and a signature algorithm for each', async (t) => {
  const res = await get(gw, 'csrattrs');
  t.is(res.status, 200);
  t.is(res.rawHeaders.find(([k]) => k === 'Content-Type')?.[1], 'application/csrattrs');
  assertEstBase64(t, res.body);
  t.deepEqual((await csrattrs()).attrs, [
    `${OID.rsaEncryption} = 2048`,
    OID.sha256WithRSAEncryption,
    `${OID.ecPublicKey} = ${OID.secp384r1}, ${OID.secp256r1}`, // a DER SET OF is sorted by encoding
    OID.ecdsaWithSHA256,
    OID.ecdsaWithSHA384,
  ]);
});

test('require_pop lists challengePassword first; one curve is a singleton set; csr_attributes come last', async (t) => {
  t.deepEqual((await csrattrs('pop')).attrs, [OID.challengePassword, `${OID.ecPublicKey} = ${OID.secp384r1}`, OID.ecdsaWithSHA384, '1.3.6.1.1.1.1.22']);
});

test('an RSA-only label names its rsa_min_bits (3072); Ed25519 is its own key and signature OID, P-521 signs with SHA-512', async (t) => {
  t.deepEqual((await csrattrs('rsa')).attrs, [`${OID.rsaEncryption} = 3072`, OID.sha256WithRSAEncryption]);
  t.deepEqual((await csrattrs('ed')).attrs, [OID.ed25519, `${OID.ecPublicKey} = ${OID.secp521r1}`, OID.ecdsaWithSHA512]);
});

test('csrattrs = "none": 204 with no body (the one label that says nothing)', async (t) => {
  const res = await get(gw, 'csrattrs', 'quiet');
  t.is(res.status, 204);
  t.is(res.body.length, 0);
  t.is(res.headers['content-type'], undefined);
});

test('real `openssl asn1parse -inform DER` reads every label\'s answer, and libest\'s 1024-byte limit holds', async (t) => {
  for (const label of [undefined, 'pop', 'rsa', 'ed']) {
    const { der } = await csrattrs(label);
    t.true(der.length <= 1024, 'libest refuses CsrAttrs over 1024 bytes (MAX_CSRATTRS)');
    const f = tmp.path(`attrs-${label ?? 'default'}.der`);
    await writeFile(f, der);
    const out = await openssl(['asn1parse', '-inform', 'DER', '-in', f]);
    if (label === undefined) {
      for (const want of ['rsaEncryption', ':0800', 'sha256WithRSAEncryption', 'id-ecPublicKey', 'prime256v1', 'secp384r1', 'ecdsa-with-SHA256', 'ecdsa-with-SHA384']) t.true(out.includes(want), `${want} in\n${out}`);
    }
    if (label === 'pop') t.regex(out, /challengePassword/);
    if (label === 'ed') t.regex(out, /ED25519/);
  }
});

test('the project\'s client CLI (`estgw csrattrs`) reads it and names what it knows', async (t) => {
  const r = await run(process.execPath, [CLI_ENTRY, 'csrattrs', '--url', gw.url, '--trust', gw.caFile, '--label', 'pop']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.toString().trim().split('\n'), [
    `${OID.challengePassword} challengePassword`,
    `${OID.ecPublicKey} ecPublicKey = ${OID.secp384r1} secp384r1`,
    `${OID.ecdsaWithSHA384} ecdsaWithSHA384`,
    '1.3.6.1.1.1.1.22',
  ]);
});

test('config: csrattrs = "none" cannot hide require_pop or csr_attributes', (t) => {
  const e1 = t.throws(() => validateConfig({ labels: { default: { csrattrs: 'none', require_pop: true } } }));
  t.regex(e1!.message, /labels\.default\.csrattrs: require_pop needs csrattrs = "policy"/);
  const e2 = t.throws(() => validateConfig({ labels: { default: { csrattrs: 'none', csr_attributes: ['1.2.3.4'] } } }));
  t.regex(e2!.message, /labels\.default\.csr_attributes: /);
});
