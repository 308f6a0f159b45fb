// RFC 7030 Appendix A style: curl and openssl as the clients, exactly as the
// tutorial drives them, against a real gateway with an unlabelled CA and a
// labelled one (§3.2.2 `/.well-known/est/<label>/<op>`).
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fromPemAll, toPem } from '../../src/est/base64.js';
import { boundaryOf, parseMultipart } from '../../src/est/multipart.js';
import { type OpensslKeyType, certText, openssl, opensslCsr, opensslCsrForKey, run, runOk, scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let tmp: Awaited<ReturnType<typeof scratchDir>>;
let plantCaFile: string;
test.before(async () => {
  tmp = await scratchDir('estgw-ext-');
  gw = await startTestGateway({
    cas: { root: {}, plant: { create: 'root', subject: '/O=Plant/CN=plant CA' } },
    labels: { default: {}, plant: { ca: 'plant' } },
  });
  plantCaFile = tmp.path('plant-ca.pem');
  await writeFile(plantCaFile, toPem('CERTIFICATE', gw.gateway.pki.cas.get('plant')!.certDer));
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const opUrl = (op: string, label?: string) => `${gw.url}/${label ? `${label}/` : ''}${op}`;

interface CurlOptions {
  op: string;
  label?: string;
  user?: string;
  dataFile?: string;
  cert?: [string, string];
  tls?: '1.2' | '1.3';
  extra?: string[];
}

/** curl, with the status code on the last line of stdout and the verbose trace in stderr. */
async function curl(o: CurlOptions): Promise<{ status: number; body: Buffer; stderr: string; headers: string }> {
  const headersFile = tmp.path(`headers-${Math.random().toString(36).slice(2)}`);
  const args = ['-sS', '-v', '--max-time', '10', '--cacert', gw.caFile, '-D', headersFile, '-w', '\n%{http_code}'];
  if (o.user) args.push('-u', o.user);
  if (o.dataFile) args.push('--data-binary', `@${o.dataFile}`, '-H', 'Content-Type: application/pkcs10');
  if (o.cert) args.push('--cert', o.cert[0], '--key', o.cert[1]);
  if (o.tls === '1.2') args.push('--tlsv1.2', '--tls-max', '1.2');
  if (o.tls === '1.3') args.push('--tlsv1.3');
  args.push(...(o.extra ?? []), opUrl(o.op, o.label));
  const r = await run('curl', args, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  const out = r.stdout;
  const nl = out.lastIndexOf('\n');
  return { status: Number(out.subarray(nl + 1).toString()), body: out.subarray(0, nl), stderr: r.stderr, headers: await readFile(headersFile, 'latin1') };
}

/** The tutorial's pipeline: `curl ... | base64 -d | openssl pkcs7 -inform DER -print_certs`. */
async function tutorialEnroll(b64File: string, o: { label?: string; op?: string; user?: string; cert?: [string, string]; tls?: string[] } = {}): Promise<string> {
  const script =
    'set -o pipefail; curl -sS --fail --max-time 10 --cacert "$1" $2 $3 --data-binary @"$4" -H "Content-Type: application/pkcs10" "$5" | base64 -d | openssl pkcs7 -inform DER -print_certs';
  const auth = o.user ? `-u ${o.user}` : '';
  const certArgs = o.cert ? `--cert ${o.cert[0]} --key ${o.cert[1]}` : '';
  const tls = (o.tls ?? []).join(' ');
  return runOk('bash', ['-c', script, 'enroll', gw.caFile, `${auth} ${tls}`.trim(), certArgs, b64File, opUrl(o.op ?? 'simpleenroll', o.label)], { timeoutMs: 20_000 });
}

const certFromPrintCerts = (out: string) => {
  const der = fromPemAll(out, 'CERTIFICATE');
  return der.map((d) => new X509Certificate(d));
};

test('openssl s_client -showcerts shows the server certificate and the root the client must trust (2 certificates)', async (t) => {
  const r = await run('openssl', ['s_client', '-showcerts', '-verify', '5', '-connect', `127.0.0.1:${gw.port}`, '-CAfile', gw.caFile], { timeoutMs: 10_000 });
  const out = r.stdout.toString();
  const certs = fromPemAll(out, 'CERTIFICATE').map((d) => new X509Certificate(d));
  t.is(certs.length, 2, out);
  t.true(certs[1]!.raw.equals(new X509Certificate(gw.caPem).raw), 'the second is the root = caPem');
  t.true(certs[0]!.checkIssued(certs[1]!));
  t.regex(out, /Verify return code: 0 \(ok\)/);
});

for (const version of ['1.2', '1.3'] as const) {
  test(`openssl s_client -tls1_${version.slice(2)} negotiates TLS ${version}`, async (t) => {
    const r = await run('openssl', ['s_client', `-tls1_${version.slice(2)}`, '-connect', `127.0.0.1:${gw.port}`, '-CAfile', gw.caFile], { timeoutMs: 10_000 });
    t.regex(r.stdout.toString(), new RegExp(`New, TLSv${version.replace('.', '\\.')}, Cipher`));
  });
}

for (const keyType of ['rsa2048', 'p256', 'p384'] as const satisfies readonly OpensslKeyType[]) {
  test(`tutorial flow: openssl req (${keyType}) | curl -u estuser:estpwd simpleenroll | base64 -d | openssl pkcs7 -print_certs; openssl verify`, async (t) => {
    const csr = await opensslCsr(tmp.dir, `tut-${keyType}`, keyType, `/CN=tutorial-${keyType}`);
    const out = await tutorialEnroll(csr.b64File, { user: 'estuser:estpwd' });
    const certs = certFromPrintCerts(out);
    t.is(certs.length, 1);
    t.is(certs[0]!.subject, `CN=tutorial-${keyType}`);
    const certFile = tmp.path(`tut-${keyType}.cert.pem`);
    await writeFile(certFile, certs[0]!.toString());
    t.regex(await openssl(['verify', '-CAfile', gw.caFile, certFile]), /: OK/);
    const pub = await openssl(['pkey', '-in', csr.keyFile, '-pubout']);
    t.is(certs[0]!.publicKey.export({ type: 'spki', format: 'pem' }), pub);
  });
}

for (const tls of ['1.2', '1.3'] as const) {
  test(`curl over TLS ${tls} enrolls`, async (t) => {
    const csr = await opensslCsr(tmp.dir, `tls${tls}`, 'p256', `/CN=tls-${tls}`);
    const r = await curl({ op: 'simpleenroll', user: 'estuser:estpwd', dataFile: csr.b64File, tls });
    t.is(r.status, 200, r.body.toString());
    t.regex(r.stderr, new RegExp(`SSL connection using TLSv${tls.replace('.', '\\.')}`));
    t.regex(r.headers, /^Content-Type: application\/pkcs7-mime; smime-type=certs-only\r$/m);
    t.regex(r.headers, /^HTTP\/1\.1 200/);
  });
}

test('curl --http2 (aziot may offer h2 through ALPN): the server settles on HTTP/1.1 and enrollment works', async (t) => {
  const csr = await opensslCsr(tmp.dir, 'h2', 'p256', '/CN=h2-client');
  const r = await curl({ op: 'simpleenroll', user: 'estuser:estpwd', dataFile: csr.b64File, extra: ['--http2'] });
  t.is(r.status, 200, r.body.toString());
  t.regex(r.stderr, /ALPN.*h2/);
  t.regex(r.stderr, /ALPN.*(server accepted|accepted).*http\/1\.1/);
  t.regex(r.headers, /^HTTP\/1\.1 200/);
});

test('curl with Expect: 100-continue gets 100 Continue, then the answer (200 with credentials, 401 without)', async (t) => {
  const csr = await opensslCsr(tmp.dir, 'expect', 'rsa2048', '/CN=expect-client');
  const ok = await curl({ op: 'simpleenroll', user: 'estuser:estpwd', dataFile: csr.b64File, extra: ['-H', 'Expect: 100-continue'] });
  t.is(ok.status, 200, ok.body.toString());
  t.regex(ok.stderr, /HTTP\/1\.1 100 Continue/);
  const denied = await curl({ op: 'simpleenroll', dataFile: csr.b64File, extra: ['-H', 'Expect: 100-continue', '--expect100-timeout', '5'] });
  t.is(denied.status, 401);
});

test('openssl x509 -text: SKI, AKI, keyUsage, EKU clientAuth; no subjectAltName unless requested', async (t) => {
  const plain = await opensslCsr(tmp.dir, 'ext-plain', 'rsa2048', '/CN=ext-plain');
  const withSan = await opensslCsr(tmp.dir, 'ext-san', 'p256', '/CN=ext-san', ['-addext', 'subjectAltName=DNS:ext-san.plant.example,IP:10.1.2.3']);
  const a = certFromPrintCerts(await tutorialEnroll(plain.b64File, { user: 'estuser:estpwd' }))[0]!;
  const b = certFromPrintCerts(await tutorialEnroll(withSan.b64File, { user: 'estuser:estpwd' }))[0]!;
  const ta = await certText(tmp.dir, a.toString());
  const tb = await certText(tmp.dir, b.toString());
  for (const text of [ta, tb]) {
    t.regex(text, /X509v3 Subject Key Identifier/);
    t.regex(text, /X509v3 Authority Key Identifier/);
    t.regex(text, /X509v3 Key Usage: critical\s+Digital Signature/);
    t.regex(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\s*\n/);
    t.regex(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    t.regex(text, /Serial Number:/);
  }
  t.regex(ta, /Digital Signature, Key Encipherment/, 'RSA keys also get keyEncipherment');
  t.notRegex(ta, /Subject Alternative Name/);
  t.regex(tb, /X509v3 Subject Alternative Name:\s+DNS:ext-san\.plant\.example, IP Address:10\.1\.2\.3\s*\n/);
  const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(ta)![1];
  const rootText = await certText(tmp.dir, gw.caPem);
  const rootSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(rootText)![1];
  t.regex(ta, new RegExp(`Authority Key Identifier:\\s+(keyid:)?${rootSki}`), 'AKI is the root SKI');
  t.not(ski, rootSki);
});

test('curl with a client certificate from an earlier enrollment: simplereenroll without Basic (renew and rekey)', async (t) => {
  const first = await opensslCsr(tmp.dir, 'reenroll', 'p256', '/CN=curl-reenroll', ['-addext', 'subjectAltName=DNS:curl-reenroll.plant.example']);
  const issued = certFromPrintCerts(await tutorialEnroll(first.b64File, { user: 'estuser:estpwd' }))[0]!;
  const certFile = tmp.path('reenroll.cert.pem');
  await writeFile(certFile, issued.toString());
  const renewCsr = await opensslCsrForKey(tmp.dir, 'renew', first.keyFile, '/CN=curl-reenroll', ['-addext', 'subjectAltName=DNS:curl-reenroll.plant.example']);
  const renewed = certFromPrintCerts(await tutorialEnroll(renewCsr, { op: 'simplereenroll', cert: [certFile, first.keyFile] }))[0]!;
  t.is(renewed.subject, 'CN=curl-reenroll');
  t.is(renewed.subjectAltName, 'DNS:curl-reenroll.plant.example');
  t.not(renewed.serialNumber, issued.serialNumber);
  t.true(renewed.publicKey.equals(issued.publicKey));
  // rekey: a new key, same names, authenticated by the old certificate and key
  const rekey = await opensslCsr(tmp.dir, 'rekey', 'p256', '/CN=curl-reenroll', ['-addext', 'subjectAltName=DNS:curl-reenroll.plant.example']);
  const rekeyed = certFromPrintCerts(await tutorialEnroll(rekey.b64File, { op: 'simplereenroll', cert: [certFile, first.keyFile] }))[0]!;
  t.false(rekeyed.publicKey.equals(issued.publicKey));
  const audit = gw.audit().filter((l) => l.op === 'simplereenroll' && l.status === 200 && l.subject === 'CN=curl-reenroll');
  t.deepEqual(audit.map((l) => l.reenroll).sort(), ['rekey', 'renew']);
  t.true(audit.every((l) => l.identity === 'cert:device/curl-reenroll'));
});

test('curl: wrong password gets 401 with the Basic challenge; the tutorial pipeline then fails', async (t) => {
  const csr = await opensslCsr(tmp.dir, 'wrongpw', 'p256', '/CN=wrongpw');
  const r = await curl({ op: 'simpleenroll', user: 'estuser:nope', dataFile: csr.b64File });
  t.is(r.status, 401);
  t.regex(r.headers, /^WWW-Authenticate: Basic realm="estrealm"\r$/m);
  await t.throwsAsync(tutorialEnroll(csr.b64File, { user: 'estuser:nope' }));
});

// Every operation, unlabelled and labelled, through curl (issue item 3).
for (const label of [undefined, 'plant']) {
  const where = label ? `/.well-known/est/${label}/` : '/.well-known/est/';
  test(`curl ${where}{cacerts,csrattrs,simpleenroll,simplereenroll,serverkeygen,fullcmc}`, async (t) => {
    const caFile = label ? plantCaFile : gw.caFile;
    const caPem = await readFile(caFile, 'utf8');

    const ca = await curl({ op: 'cacerts', ...(label ? { label } : {}) });
    t.is(ca.status, 200);
    t.regex(ca.headers, /^Content-Type: application\/pkcs7-mime\r$/m);
    const chainFile = tmp.path(`chain-${label ?? 'default'}.der`);
    await writeFile(chainFile, Buffer.from(ca.body.toString(), 'base64'));
    const chain = certFromPrintCerts(await openssl(['pkcs7', '-inform', 'DER', '-in', chainFile, '-print_certs']));
    t.true(chain.at(-1)!.raw.equals(new X509Certificate(caPem).raw), "the label's own root");

    const attrs = await curl({ op: 'csrattrs', ...(label ? { label } : {}) });
    t.true([200, 204].includes(attrs.status));

    const csr = await opensslCsr(tmp.dir, `matrix-${label ?? 'default'}`, 'p256', `/CN=matrix-${label ?? 'default'}`);
    const enrolled = await curl({ op: 'simpleenroll', user: 'estuser:estpwd', dataFile: csr.b64File, ...(label ? { label } : {}) });
    t.is(enrolled.status, 200, enrolled.body.toString());
    const certFile = tmp.path(`matrix-${label ?? 'default'}.cert.pem`);
    const certDer = tmp.path(`matrix-${label ?? 'default'}.p7.der`);
    await writeFile(certDer, Buffer.from(enrolled.body.toString(), 'base64'));
    await writeFile(certFile, await openssl(['pkcs7', '-inform', 'DER', '-in', certDer, '-print_certs']));
    t.regex(await openssl(['verify', '-CAfile', caFile, certFile]), /: OK/);

    const re = await curl({ op: 'simplereenroll', dataFile: csr.b64File, cert: [certFile, csr.keyFile], ...(label ? { label } : {}) });
    t.is(re.status, 200, re.body.toString());

    const skg = await curl({ op: 'serverkeygen', user: 'estuser:estpwd', dataFile: csr.b64File, ...(label ? { label } : {}) });
    t.is(skg.status, 200, skg.body.toString());
    const type = /^Content-Type: (.*)\r$/m.exec(skg.headers)![1]!;
    const parts = parseMultipart(skg.body, boundaryOf(type));
    t.deepEqual(parts.map((p) => p.headers['content-type']), ['application/pkcs8', 'application/pkcs7-mime; smime-type=certs-only']);
    const keyFile = tmp.path(`skg-${label ?? 'default'}.key.der`);
    await writeFile(keyFile, Buffer.from(parts[0]!.body.toString(), 'base64'));
    t.regex(await openssl(['pkey', '-inform', 'DER', '-in', keyFile, '-noout', '-text']), /Private-Key: \(2048 bit/);

    const cmc = await curl({ op: 'fullcmc', user: 'estuser:estpwd', dataFile: csr.b64File, ...(label ? { label } : {}) });
    t.is(cmc.status, 501);
    t.regex(cmc.headers, /^Content-Type: text\/plain/m);
  });
}
