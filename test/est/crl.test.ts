// The CRL codec (src/est/crl.ts) against pkijs (an independent parser) on the
// CRLs our CAs sign, against `openssl ca -gencrl` output, and on each kind of
// CRL it refuses, with the reason it gives.
import test from 'ava';
import * as pkijs from 'pkijs';
import { sign } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isEstError } from '../../src/errors.js';
import { toPem } from '../../src/est/base64.js';
import { crlSignedBy, parseCrl } from '../../src/est/crl.js';
import { TRUE, bitString, ctx, octetString, oid, seq, smallInteger, time, tlv } from '../../src/est/der.js';
import { encodeAuthorityKeyIdentifier, extension } from '../../src/est/extensions.js';
import { OID } from '../../src/est/oids.js';
import { signatureAlgorithmFor } from '../../src/est/signature.js';
import { type CaMaterial, createRootCa, createSubordinateCa } from '../../src/pki/ca.js';
import { buildCrl } from '../../src/pki/crl.js';
import { leafCert } from '../helpers/client-certs.js';
import { openssl, scratchDir } from '../helpers/cli.js';

const ab = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let root: CaMaterial;
let sub: CaMaterial;
let rsa: CaMaterial;
test.before(async () => {
  tmp = await scratchDir('estgw-crl-');
  root = await createRootCa('root', tmp.path('root'), { subject: [['O', 'Test'], ['CN', 'crl root']], days: 30 });
  sub = await createSubordinateCa('sub', tmp.path('sub'), root, { subject: [['O', 'Test'], ['CN', 'crl sub']], days: 30 });
  rsa = await createRootCa('rsa', tmp.path('rsa'), { subject: [['CN', 'rsa root']], days: 30, keySpec: 'rsa2048' });
});
test.after.always(async () => tmp?.remove());

test('a CRL our CA signs reads the same in pkijs: issuer, times, number, entries and reasons; the signature verifies against its CA only', (t) => {
  for (const ca of [root, sub, rsa]) {
    const thisUpdate = new Date(Date.UTC(2026, 10, 30, 12));
    const nextUpdate = new Date(Date.UTC(2055, 0, 1)); // GeneralizedTime from 2050
    const der = buildCrl(ca, {
      number: 300,
      thisUpdate,
      nextUpdate,
      entries: [
        { serialHex: '0a1b2c', revokedAt: new Date(Date.UTC(2026, 10, 1)), reason: 'keyCompromise' },
        { serialHex: '80ff', revokedAt: new Date(Date.UTC(2026, 10, 2)), reason: 'unspecified' },
      ],
    });
    const crl = parseCrl(der);
    const oracle = pkijs.CertificateRevocationList.fromBER(ab(der));
    t.true(Buffer.from(oracle.issuer.toSchema().toBER()).equals(crl.issuerDer), ca.name);
    t.is(oracle.thisUpdate.value.getTime(), crl.thisUpdate.getTime());
    t.is(oracle.nextUpdate!.value.getTime(), crl.nextUpdate.getTime());
    t.is(crl.nextUpdate.getTime(), nextUpdate.getTime());
    t.is(crl.number, 300n);
    t.true(crl.keyId!.equals(ca.fields.subjectKeyId!));
    t.deepEqual(
      oracle.revokedCertificates!.map((r) => Buffer.from(r.userCertificate.valueBlock.valueHexView).toString('hex').replace(/^00/, '')),
      crl.revoked.map((r) => r.serialHex),
    );
    t.deepEqual(crl.revoked.map((r) => r.reason), ['keyCompromise', 'unspecified']);
    t.true(crlSignedBy(crl, ca.certDer), `${ca.name} signed it`);
    for (const other of [root, sub, rsa].filter((o) => o !== ca)) t.false(crlSignedBy(crl, other.certDer), `${other.name} did not`);
  }
});

test('a CRL made by `openssl ca -gencrl` (v2, authorityKeyIdentifier, crlnumber) parses, names the revoked certificate and verifies', async (t) => {
  const d = (f: string) => tmp.path(`oca-${f}`);
  const leaf = await leafCert(sub, 'revoked-by-openssl');
  await writeFile(d('ca.pem'), toPem('CERTIFICATE', sub.certDer));
  await writeFile(d('ca.key'), sub.key.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
  await writeFile(d('leaf.pem'), leaf.certPem);
  await writeFile(d('index.txt'), '');
  await writeFile(d('crlnumber'), '1000\n');
  await writeFile(d('ca.cnf'), [
    '[ca]', 'default_ca = c', '[c]', `database = ${d('index.txt')}`, `crlnumber = ${d('crlnumber')}`, 'default_md = sha256',
    'default_crl_days = 7', 'crl_extensions = ext', '[ext]', 'authorityKeyIdentifier = keyid:always', '',
  ].join('\n'));
  await openssl(['ca', '-config', d('ca.cnf'), '-keyfile', d('ca.key'), '-cert', d('ca.pem'), '-revoke', d('leaf.pem'), '-crl_reason', 'cessationOfOperation']);
  await openssl(['ca', '-config', d('ca.cnf'), '-keyfile', d('ca.key'), '-cert', d('ca.pem'), '-gencrl', '-out', d('crl.pem')]);
  await openssl(['crl', '-in', d('crl.pem'), '-outform', 'DER', '-out', d('crl.der')]);
  const crl = parseCrl(await readFile(d('crl.der')));
  t.is(crl.number, 0x1000n);
  t.deepEqual(crl.revoked.map((r) => [r.serialHex, r.reason]), [[leaf.serialHex, 'cessationOfOperation']]);
  t.true(crl.issuerDer.equals(sub.fields.subjectDer));
  t.is(crl.nextUpdate.getTime() - crl.thisUpdate.getTime(), 7 * 86_400_000);
  t.true(crlSignedBy(crl, sub.certDer));
  t.false(crlSignedBy(crl, root.certDer));
});

/** A CRL of `root` with these tbsCertList fields after the issuer, signed properly: what is refused is the content. */
function crlWith(o: { version?: boolean; next?: boolean; entries?: Buffer[]; extensions?: Buffer[] }): Buffer {
  const alg = signatureAlgorithmFor(root.key);
  const exts = o.extensions ?? [
    extension(OID.authorityKeyIdentifier, false, encodeAuthorityKeyIdentifier(root.fields.subjectKeyId!)),
    extension(OID.cRLNumber, false, smallInteger(1)),
  ];
  const tbs = seq(
    ...(o.version === false ? [] : [smallInteger(1)]),
    alg.der,
    root.fields.subjectDer,
    time(new Date(Date.UTC(2026, 0, 1))),
    ...(o.next === false ? [] : [time(new Date(Date.UTC(2026, 0, 8)))]),
    ...(o.entries ? [seq(...o.entries)] : []),
    ...(exts.length ? [ctx(0, true, seq(...exts))] : []),
  );
  return seq(tbs, alg.der, bitString(sign(alg.digest, tbs, root.key)));
}
const baseExts = () => [
  extension(OID.authorityKeyIdentifier, false, encodeAuthorityKeyIdentifier(root.fields.subjectKeyId!)),
  extension(OID.cRLNumber, false, smallInteger(1)),
];
const entry = (...exts: Buffer[]) => seq(smallInteger(7), time(new Date(Date.UTC(2025, 11, 1))), ...(exts.length ? [seq(...exts)] : []));

test('refused, each with its reason: v1, no nextUpdate, no cRLNumber, delta, indirect, scoped, unknown critical extensions, bad DER', (t) => {
  const refuse = (der: Buffer, why: RegExp, what: string) => {
    const e = t.throws(() => parseCrl(der), undefined, what);
    t.true(isEstError(e, 'malformed'), what);
    t.regex(e!.message, why, what);
  };
  t.notThrows(() => parseCrl(crlWith({})));
  refuse(crlWith({ version: false }), /only version 2/, 'v1');
  refuse(crlWith({ next: false }), /no nextUpdate/, 'no nextUpdate');
  refuse(crlWith({ extensions: baseExts().slice(0, 1) }), /no cRLNumber/, 'no cRLNumber');
  refuse(crlWith({ extensions: [...baseExts(), extension(OID.deltaCRLIndicator, true, smallInteger(1))] }), /delta CRL/, 'delta');
  refuse(crlWith({ extensions: [...baseExts(), extension(OID.issuingDistributionPoint, true, seq(tlv(0x84, Buffer.from([0xff]))))] }), /indirect CRL/, 'indirect (IDP)');
  refuse(crlWith({ entries: [entry(extension(OID.certificateIssuer, true, seq(ctx(4, true, root.fields.subjectDer))))] }), /indirect CRL/, 'indirect (entry)');
  refuse(crlWith({ extensions: [...baseExts(), extension(OID.issuingDistributionPoint, true, seq(tlv(0x81, Buffer.from([0xff]))))] }), /only complete CRLs/, 'scoped');
  refuse(crlWith({ extensions: [...baseExts(), seq(oid('1.3.6.1.4.1.99999.1'), TRUE, octetString(Buffer.from([5, 0])))] }), /critical and not understood/, 'critical CRL ext');
  refuse(crlWith({ entries: [entry(seq(oid('1.3.6.1.4.1.99999.2'), TRUE, octetString(Buffer.from([5, 0]))))] }), /critical and not understood/, 'critical entry ext');
  refuse(crlWith({ entries: [] }), /empty revokedCertificates/, 'empty list');
  refuse(crlWith({}).subarray(0, 60), /truncated/, 'truncated');
  refuse(Buffer.concat([crlWith({}), Buffer.from([0])]), /trailing/, 'trailing bytes');
  // an unknown extension that is not critical is read past
  t.notThrows(() => parseCrl(crlWith({ extensions: [...baseExts(), extension('1.3.6.1.4.1.99999.3', false, Buffer.from([5, 0]))] })));
  // a valid structure whose signature does not verify parses, and crlSignedBy says no
  const good = crlWith({});
  const bad = Buffer.from(good);
  bad[bad.length - 3]! ^= 1;
  t.false(crlSignedBy(parseCrl(bad), root.certDer));
});
