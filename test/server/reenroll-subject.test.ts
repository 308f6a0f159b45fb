// RFC 7030 §4.2.2 "same Subject" is RFC 5280 §7.1 name matching: the same RDN
// sequence, and in each RDN the same attribute types with the same values,
// counted (a multiset, not a set), values compared after RFC 4518 preparation.
// A set comparison let CN=a+CN=a renew as CN=a+CN=admin.
import test from 'ava';
import type { KeyObject } from 'node:crypto';
import { toPem } from '../../src/est/base64.js';
import { Tag, oid, printable, seq, tlv, utf8 } from '../../src/est/der.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';
import { Signer } from '../../src/pki/issuance.js';
import { generateKey, privateKeyPem, spkiDer } from '../../src/pki/keys.js';
import { rawCsr, rawName } from '../helpers/csr-raw.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
test.before(async () => {
  gw = await startTestGateway();
});
test.after.always(async () => gw?.close());

/**
 * A certificate from the label's own CA with exactly this subject, as the TLS
 * client identity: the gateway no longer issues such subjects itself, but
 * certificates issued before, or by another front end of the same CA, exist.
 */
async function holder(subjectDer: Buffer): Promise<{ key: KeyObject; tls: { cert: string; key: string } }> {
  const key = await generateKey('p256');
  const spki = spkiDer(key);
  const issued = new Signer(gw.gateway.pki.cas.get('root')!).issue({ subjectDer, spki, key: describeSpki(spki), validityDays: 30, extKeyUsage: [OID.clientAuth] });
  return { key, tls: { cert: toPem('CERTIFICATE', issued.der), key: privateKeyPem(key) } };
}

const reenroll = (b64: string, tls: { cert: string; key: string }) => enroll(gw, b64, { op: 'simplereenroll', auth: null, ...tls });
const cnAttr = (v: string): [string, Buffer] => [OID.commonName, utf8(v)];

test('CN=a+CN=a does not renew as CN=a+CN=admin: each RDN is compared as a multiset, not a set', async (t) => {
  const h = await holder(rawName([cnAttr('a'), cnAttr('a')]));
  const res = await reenroll(rawCsr({ key: h.key, subject: rawName([cnAttr('a'), cnAttr('admin')]) }).b64, h.tls);
  assertReason(t, res, 403, /same subject|keep the subject/);
});

test('CN=a+CN=b does not renew as CN=a+CN=c, nor with one value dropped or one added', async (t) => {
  const h = await holder(rawName([cnAttr('a'), cnAttr('b')]));
  for (const rdn of [[cnAttr('a'), cnAttr('c')], [cnAttr('a')], [cnAttr('a'), cnAttr('b'), cnAttr('c')]]) {
    assertReason(t, await reenroll(rawCsr({ key: h.key, subject: rawName(rdn) }).b64, h.tls), 403, /subject/);
  }
});

test('the RDN sequence matters: O=p,CN=x is not CN=x,O=p, and two RDNs are not one multi-valued RDN', async (t) => {
  const h = await holder(rawName([[OID.organizationName, utf8('p')]], [cnAttr('x')]));
  assertReason(t, await reenroll(rawCsr({ key: h.key, subject: rawName([cnAttr('x')], [[OID.organizationName, utf8('p')]]) }).b64, h.tls), 403, /subject/);
  assertReason(t, await reenroll(rawCsr({ key: h.key, subject: rawName([[OID.organizationName, utf8('p')], cnAttr('x')]) }).b64, h.tls), 403, /subject/);
});

test('the same multi-valued subject renews (CN=x+O=p), whatever order the SET was written in', async (t) => {
  const cnX = seq(oid(OID.commonName), utf8('mv-x'));
  const oP = seq(oid(OID.organizationName), utf8('p'));
  const h = await holder(seq(tlv(Tag.SET, cnX, oP)));
  // DER sorts a SET OF; a BER writer need not, and the name is the same
  const renewed = issuedCert(t, await reenroll(rawCsr({ key: h.key, subject: seq(tlv(Tag.SET, oP, cnX)) }).b64, h.tls));
  t.regex(renewed.subject, /mv-x/);
});

test('RFC 5280 §7.1 / RFC 4518: case, runs of spaces and the string type do not make another name', async (t) => {
  const h = await holder(rawName([[OID.organizationName, utf8('Plant  North')]], [cnAttr('Press 7')]));
  const csr = rawCsr({ key: h.key, subject: rawName([[OID.organizationName, printable('plant north')]], [[OID.commonName, printable('PRESS 7')]]) });
  issuedCert(t, await reenroll(csr.b64, h.tls));
});

test('a different attribute type with the same value is another name (CN=x vs OU=x)', async (t) => {
  const h = await holder(rawName([cnAttr('same')]));
  assertReason(t, await reenroll(rawCsr({ key: h.key, subject: rawName([[OID.organizationalUnitName, utf8('same')]]) }).b64, h.tls), 403, /subject/);
});
