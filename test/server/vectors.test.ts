// The field captures (shared/vectors, copied to test/fixtures/vectors) replayed
// byte for byte over a raw TLS socket: RFC 7030 §3.2 (HTTP/1.1 framing), §4.1–4.5
// as libest 3.2.0p and globalsign/est 1.0.6 actually send them, and the wire
// rules of INTEROP.md for what the gateway answers.
import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { boundaryOf } from '../../src/est/multipart.js';
import { CERTS_ONLY, CHALLENGE, assertEstBase64, assertReason, certsOf, enroll, serverKeygenAnswer } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { type TestCsr, makeCsr } from '../helpers/pki.js';
import { type WireExchange, type WireResponse, exactHeader, wireExchange } from '../helpers/raw-tls.js';
import { type Capture, VECTORS_DIR, loadCaptures } from '../helpers/vectors.js';

let gw: TestGateway;
test.before(async () => {
  gw = await startTestGateway();
});
test.after.always(async () => gw?.close());

const libest = loadCaptures('libest', 'request');
const globalsign = loadCaptures('globalsign', 'request');

interface Expectation {
  status: number | number[];
  what: string;
  check?: (t: ExecutionContext, r: WireResponse, c: Capture) => void;
}

function certsOnlyEnroll(cn: string) {
  return (t: ExecutionContext, r: WireResponse) => {
    t.is(exactHeader(r, 'Content-Type'), CERTS_ONLY);
    assertEstBase64(t, r.body);
    const certs = certsOf(r.body);
    t.is(certs.length, 1, 'the issued certificate alone (globalsign wants exactly one; libest fails over 4 KiB)');
    t.is(certs[0]!.subject, `CN=${cn}`);
    t.true(certs[0]!.verify(new X509Certificate(gw.caPem).publicKey));
    t.true(r.body.length < 4096);
  };
}

function cacerts(t: ExecutionContext, r: WireResponse) {
  t.regex(exactHeader(r, 'Content-Type') ?? '', /^application\/pkcs7-mime/);
  assertEstBase64(t, r.body);
  const certs = certsOf(r.body);
  t.true(certs.length >= 1);
  const root = certs.at(-1)!;
  t.is(root.subject, root.issuer, 'the chain ends in the self-signed root');
  t.true(root.raw.equals(new X509Certificate(gw.caPem).raw));
}

// libest's estclient reports 204 as EST_ERR_HTTP_NO_CONTENT: the default label always has attributes
function csrattrs(t: ExecutionContext, r: WireResponse) {
  t.is(exactHeader(r, 'Content-Type'), 'application/csrattrs');
  assertEstBase64(t, r.body);
}

function challenge(t: ExecutionContext, r: WireResponse) {
  t.is(exactHeader(r, 'WWW-Authenticate'), CHALLENGE);
  t.regex(exactHeader(r, 'Content-Type') ?? '', /^text\/plain/);
}

function serverkeygen(cn: string) {
  return (t: ExecutionContext, r: WireResponse) => {
    const type = exactHeader(r, 'Content-Type') ?? '';
    const a = serverKeygenAnswer(t, type, r.body);
    // INTEROP.md: the libest client accepts only RSA keys of 2048 bits or more; the default is RSA-2048
    t.is(a.key.asymmetricKeyType, 'rsa');
    t.is(a.key.asymmetricKeyDetails?.modulusLength, 2048);
    t.is(a.cert.subject, `CN=${cn}`);
    // the parser drops the line end before each delimiter: the parts are 64-column base64
    for (const part of [a.keyPart, a.certPart]) t.true(part.body.toString('latin1').split(/\r?\n/).every((l) => l.length <= 64));
    t.true(r.body.toString('latin1').includes(`--${boundaryOf(type)}--`), 'the closing delimiter');
  };
}

const EXPECT: Record<string, Expectation> = {
  'libest/01-request.bin': { status: 200, what: 'cacerts', check: cacerts },
  'libest/02-request.bin': { status: 401, what: 'simpleenroll without credentials: the Basic challenge', check: challenge },
  'libest/03-request.bin': { status: 200, what: 'simpleenroll with Basic', check: certsOnlyEnroll('libest-client-1') },
  'libest/04-request.bin': { status: 200, what: 'csrattrs', check: csrattrs },
  'libest/05-request.bin': { status: 401, what: 'serverkeygen without credentials', check: challenge },
  'libest/06-request.bin': { status: 200, what: 'serverkeygen with Basic', check: serverkeygen('libest-skg') },
  'libest/07-request.bin': { status: 401, what: 'simplereenroll without a certificate or credentials', check: challenge },
  // `Basic Og==` says "my certificate authenticates me"; there is no certificate here
  'libest/08-request.bin': { status: 401, what: 'simplereenroll with Basic Og== and no client certificate', check: challenge },
  'globalsign/01-request.bin': { status: 200, what: 'cacerts', check: cacerts },
  'globalsign/02-request.bin': { status: 200, what: 'csrattrs', check: csrattrs },
  'globalsign/03-request.bin': { status: 200, what: 'chunked simpleenroll', check: certsOnlyEnroll('gs-client-1') },
  'globalsign/04-request.bin': { status: 200, what: 'chunked serverkeygen (P-256 CSR, RSA-2048 key back)', check: serverkeygen('gs-skg') },
  'globalsign/05-request.bin': {
    status: [401, 403],
    what: 'simplereenroll without a client certificate',
    check: (t, r) => assertReason(t, r, r.status),
  },
};

/** What every answer must look like on the wire (INTEROP.md, libest section). */
function assertWireForm(t: ExecutionContext, r: WireResponse) {
  t.regex(r.statusLine, /^HTTP\/1\.1 \d{3} /, 'status line is HTTP/1.1');
  t.false(r.chunked, 'no chunked responses');
  t.is(r.headers['transfer-encoding'], undefined);
  t.is(r.headers['content-encoding'], undefined, 'never compressed, even when the client offers gzip');
  if (r.status !== 204) {
    t.is(exactHeader(r, 'Content-Length'), String(r.body.length), 'Content-Length, spelled so, matching the body');
    t.truthy(exactHeader(r, 'Content-Type'), 'Content-Type spelled so');
  }
  for (const [name] of r.rawHeaders) {
    if (/^(content-type|content-length|www-authenticate)$/i.test(name)) t.true(['Content-Type', 'Content-Length', 'WWW-Authenticate'].includes(name), `header name ${name}`);
  }
}

function statusOk(t: ExecutionContext, r: WireResponse, e: Expectation) {
  const want = Array.isArray(e.status) ? e.status : [e.status];
  t.true(want.includes(r.status), `${e.what}: got ${r.statusLine} ${r.body.toString().slice(0, 200)}`);
}

test('the fixture captures are the shared captures, byte for byte', (t) => {
  const shared = fileURLToPath(new URL('../../../../shared/vectors/', import.meta.url));
  const all = [...libest, ...globalsign];
  t.is(all.length, 13);
  for (const c of all) t.truthy(EXPECT[c.name], `an expectation for ${c.name}`);
  if (!existsSync(shared)) {
    t.log(`no ${shared}: compared nothing`);
    return;
  }
  for (const peer of ['libest', 'globalsign']) {
    for (const f of readdirSync(join(shared, peer))) {
      t.true(readFileSync(join(shared, peer, f)).equals(readFileSync(join(VECTORS_DIR, peer, f))), `${peer}/${f}`);
    }
  }
});

for (const c of libest) {
  test(`libest ${c.name}: ${EXPECT[c.name]?.what}; exactly one response, then the server closes (Connection: close)`, async (t) => {
    const e = EXPECT[c.name]!;
    t.is(c.headers.connection, 'close');
    const x: WireExchange = await wireExchange(gw.port, c.raw, { until: 'close', timeoutMs: 8000 });
    t.true(x.serverClosed, 'the server closed the connection');
    t.is(x.responses.length, 1, `one response, got:\n${x.raw.toString('latin1').slice(0, 2000)}`);
    // it closes because the client asked, and says so: not because a keep-alive timer ran out
    t.is(x.responses[0]!.headers.connection, 'close');
    t.is(x.raw.indexOf('HTTP/1.', 1), -1, 'no second status line');
    const r = x.responses[0]!;
    statusOk(t, r, e);
    assertWireForm(t, r);
    t.is(x.raw.length, x.raw.indexOf('\r\n\r\n') + 4 + r.body.length, 'nothing after the body');
    e.check?.(t, r, c);
  });
}

for (const c of globalsign) {
  test(`globalsign ${c.name}: ${EXPECT[c.name]?.what}`, async (t) => {
    const e = EXPECT[c.name]!;
    const x = await wireExchange(gw.port, c.raw, { until: { responses: 1 }, timeoutMs: 8000 });
    t.is(x.responses.length, 1, x.raw.toString('latin1').slice(0, 2000));
    const r = x.responses[0]!;
    statusOk(t, r, e);
    assertWireForm(t, r);
    e.check?.(t, r, c);
  });
}

test('globalsign: all five captures pipelined on one kept-alive connection get five answers in order', async (t) => {
  const x = await wireExchange(gw.port, Buffer.concat(globalsign.map((c) => c.raw)), { until: { responses: 5 }, timeoutMs: 10_000 });
  t.is(x.responses.length, 5, x.raw.toString('latin1').slice(0, 3000));
  t.is(x.responses[0]!.status, 200);
  t.is(x.responses[1]!.status, 200);
  t.is(x.responses[2]!.status, 200);
  t.is(x.responses[3]!.status, 200);
  t.true([401, 403].includes(x.responses[4]!.status));
  for (const r of x.responses) assertWireForm(t, r);
});

test('libest: the same capture over TLS 1.2 (libest speaks TLS 1.2 at most)', async (t) => {
  const c = libest.find((v) => v.name === 'libest/03-request.bin')!;
  const x = await wireExchange(gw.port, c.raw, { maxVersion: 'TLSv1.2', until: 'close' });
  t.is(x.protocol, 'TLSv1.2');
  t.is(x.responses.length, 1);
  t.is(x.responses[0]!.status, 200);
});

test('TLS 1.3 is offered too', async (t) => {
  const c = libest.find((v) => v.name === 'libest/01-request.bin')!;
  const x = await wireExchange(gw.port, c.raw, { minVersion: 'TLSv1.3', until: 'close' });
  t.is(x.protocol, 'TLSv1.3');
  t.is(x.responses[0]?.status, 200);
});

// RFC 8951 §3.1: base64 with or without line wrapping, CR, LF, spaces and tabs.
const bodies: Array<[string, (csr: TestCsr) => string | Buffer]> = [
  ['libest capture body: 64-column LF lines', () => libest.find((v) => v.name === 'libest/03-request.bin')!.body],
  ['globalsign capture body: 76-column CRLF lines, de-chunked', () => globalsign.find((v) => v.name === 'globalsign/03-request.bin')!.body],
  ['libest capture body with its extra CRLF', () => Buffer.concat([libest.find((v) => v.name === 'libest/03-request.bin')!.body, Buffer.from('\r\n')])],
  ['one line, no newline', (c) => c.der.toString('base64')],
  ['76-column CRLF lines', (c) => c.der.toString('base64').replace(/.{1,76}/g, '$&\r\n')],
  ['spaces and tabs inside', (c) => c.der.toString('base64').replace(/.{1,10}/g, '$& \t')],
  ['no padding', (c) => c.der.toString('base64').replace(/=+$/, '')],
];
for (const [name, make] of bodies) {
  test(`RFC 8951 tolerant base64: ${name}`, async (t) => {
    const csr = await makeCsr(`tolerant-${name.length}`);
    const body = make(csr);
    const res = await enroll(gw, body, { headers: { 'Content-Transfer-Encoding': 'base64' } });
    t.is(res.status, 200, res.body.toString());
    t.is(certsOf(res.body).length, 1);
    const der = decodeEstBase64(Buffer.from(body));
    t.true(der.length > 100);
  });
}

// BUG (serverkeygen framing): src/est/multipart.ts writes `BASE64\n--boundary`; RFC 2046 §5.1.1 makes the
// CRLF before `--boundary` part of the delimiter, and libest and globalsign both send `\r\n--boundary`.
// Go's mime/multipart (the globalsign client) locks onto CRLF mode from the first delimiter line and
// then searches for `\r\n--boundary`, so it never finds the second part. Fix: end every part with
// `\r\n` after the base64 in buildServerKeygenBody.
test('RFC 2046 §5.1.1: every serverkeygen multipart delimiter after the first follows a CRLF', async (t) => {
  const c = libest.find((v) => v.name === 'libest/06-request.bin')!;
  const x = await wireExchange(gw.port, c.raw, { until: 'close' });
  const r = x.responses[0]!;
  t.is(r.status, 200);
  const boundary = boundaryOf(r.headers['content-type']!);
  const text = r.body.toString('latin1');
  t.true(text.startsWith(`--${boundary}\r\n`));
  const strict = text.split(`\r\n--${boundary}`);
  t.is(strict.length, 3, 'key part, certificate part, closing delimiter');
  t.true(strict[2]!.startsWith('--'));
});
