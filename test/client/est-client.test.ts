// What the client sends and how it handles what servers answer, against a
// scripted TLS server: Basic modes, 202 + Retry-After, tls-unique PoP, labels,
// every body form (PEM, base64, raw DER, BER PKCS#7), and transport failures.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { EstClient, type EstClientOptions } from '../../src/transport/est-client.js';
import { type EstError, isEstError } from '../../src/errors.js';
import { decodeEstBase64, encodeEstBase64, toPem } from '../../src/est/base64.js';
import { buildCsrAttrs } from '../../src/est/csrattrs.js';
import { parseCsr } from '../../src/est/csr.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { oid, seq, smallInteger } from '../../src/est/der.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { buildCertsOnly } from '../../src/est/pkcs7.js';
import { generateKey, privateKeyPem } from '../../src/pki/keys.js';
import type { ServerTls } from '../../src/pki/ca.js';
import { type TestCa, issueForCsr, makeCa, makeCsrDer, tlsFixture } from './support/pki.js';
import { freePort } from './support/net.js';
import { type SeenRequest, type TinyServer, httpResponse, startTinyServer } from './support/tiny-server.js';

let dir: string;
let ca: TestCa;
let tls: ServerTls;
test.before(async () => {
  ({ dir, ca, tls } = await tlsFixture('estgw-client-est-', 'est-client test root'));
});
test.after.always(async () => rm(dir, { recursive: true, force: true }));

const P7 = 'application/pkcs7-mime; smime-type=certs-only';
const issue = (req: SeenRequest) => issueForCsr(ca, decodeEstBase64(req.body));
const certsOnlyB64 = (certs: Buffer[]) => encodeEstBase64(buildCertsOnly(certs));
const ok = (body: string | Buffer, type = P7) => httpResponse('200 OK', { 'Content-Type': type }, body);

async function withServer<T>(respond: (req: SeenRequest, i: number) => Buffer | string | Promise<Buffer | string>, fn: (srv: TinyServer, client: (o?: Partial<EstClientOptions>) => EstClient) => Promise<T>, max?: 'TLSv1.2' | 'TLSv1.3'): Promise<T> {
  const srv = await startTinyServer({ ...tls, ca: ca.pem }, respond, max ? { maxVersion: max } : {});
  const clients: EstClient[] = [];
  try {
    return await fn(srv, (o = {}) => {
      const c = new EstClient({ url: srv.url, trust: ca.pem, pop: 'never', ...o });
      clients.push(c);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await srv.close();
  }
}

test('RFC 7030 §4.2.1 request: application/pkcs10, 64-column base64 with a final LF, Basic pre-emptively', async (t) => {
  await withServer((req) => ok(certsOnlyB64([issue(req)])), async (srv, client) => {
    const { der } = await makeCsrDer('dev-req');
    const r = await client({ username: 'estuser', password: 'estpwd' }).simpleenroll(der);
    t.is(new X509Certificate(r.certificate).subject, 'CN=dev-req');
    const req = srv.seen[0]!;
    t.is(req.method, 'POST');
    t.is(req.path, '/.well-known/est/simpleenroll');
    t.is(req.headers['content-type'], 'application/pkcs10');
    t.is(req.headers.authorization, `Basic ${Buffer.from('estuser:estpwd').toString('base64')}`);
    const text = req.body.toString('latin1');
    t.true(text.endsWith('\n'));
    t.false(text.includes('\r'));
    t.true(text.split('\n').slice(0, -1).every((l) => l.length === 64 || l === text.split('\n').at(-2)));
    t.true(decodeEstBase64(req.body).equals(der));
  });
});

test('a bare https://host:port gets /.well-known/est; a label is one extra segment (§3.2.2)', async (t) => {
  await withServer(() => ok(certsOnlyB64([ca.der])), async (srv, client) => {
    await client({ url: `https://127.0.0.1:${srv.port}` }).cacerts();
    await client({ url: `${srv.url}/`, label: 'plant-a' }).cacerts();
    t.deepEqual(srv.seen.map((r) => r.path), ['/.well-known/est/cacerts', '/.well-known/est/plant-a/cacerts']);
    t.throws(() => client({ label: 'simpleenroll' }), { message: /invalid EST label/ });
    t.throws(() => client({ label: 'a/b' }), { message: /invalid EST label/ });
    t.throws(() => client({ url: 'http://127.0.0.1/.well-known/est' }), { message: /must be https/ });
  });
});

test('§4.2.3: 202 + Retry-After is waited out and the identical request resent', async (t) => {
  const sleeps: number[] = [];
  await withServer(
    (req, i) => (i < 2 ? httpResponse('202 Accepted', { 'Retry-After': '2' }) : ok(certsOnlyB64([issue(req)]))),
    async (srv, client) => {
      const key = await generateKey('p256');
      // a CSR factory: without PoP it is built once and resent as the same bytes
      let built = 0;
      const c = client({ pendingBudgetMs: 60_000, sleep: async (ms) => void sleeps.push(ms) });
      const r = await c.simpleenroll(() => {
        built++;
        return buildCsr({ subject: buildName([['CN', 'pending-dev']]), privateKey: key });
      });
      t.is(new X509Certificate(r.certificate).subject, 'CN=pending-dev');
      t.deepEqual(sleeps, [2000, 2000]);
      t.is(srv.seen.length, 3);
      t.is(built, 1);
      t.true(srv.seen[0]!.body.equals(srv.seen[2]!.body));
    },
  );
});

test('202 beyond the pending budget surfaces as EstError pending with the Retry-After (seconds or HTTP date)', async (t) => {
  await withServer(
    (_req, i) => httpResponse('202 Accepted', { 'Retry-After': i === 0 ? '120' : new Date(Date.now() + 3_600_000).toUTCString() }),
    async (_srv, client) => {
      const { der } = await makeCsrDer('pending-2');
      const e1 = await t.throwsAsync(client().simpleenroll(der));
      t.true(isEstError(e1, 'pending'));
      t.is((e1 as EstError).retryAfter, 120);
      const e2 = await t.throwsAsync(client({ pendingBudgetMs: 10_000 }).simpleenroll(der));
      t.true(isEstError(e2, 'pending'));
      t.true(Math.abs((e2 as EstError).retryAfter! - 3600) <= 2);
    },
  );
});

test('§3.2.3: challenge mode sends Basic only after a 401; without credentials the 401 is an error', async (t) => {
  const respond = (req: SeenRequest) =>
    req.headers.authorization ? ok(certsOnlyB64([issue(req)])) : httpResponse('401 Unauthorized', { 'WWW-Authenticate': 'Basic realm="estrealm"' });
  await withServer(respond, async (srv, client) => {
    const { der } = await makeCsrDer('challenged');
    await client({ username: 'u', password: 'p', basicAuth: 'challenge' }).simpleenroll(der);
    t.deepEqual(srv.seen.map((r) => r.headers.authorization ?? null), [null, `Basic ${Buffer.from('u:p').toString('base64')}`]);
    const e = await t.throwsAsync(client().simpleenroll(der));
    t.true(isEstError(e, 'unauthorized'));
  });
});

test('§3.5: with pop=auto and csrattrs listing challengePassword, the CSR carries base64(tls-unique) over TLS 1.2', async (t) => {
  await withServer(
    (req) => {
      if (req.path.endsWith('/csrattrs')) return ok(encodeEstBase64(buildCsrAttrs([{ oid: OID.challengePassword }])), 'application/csrattrs');
      return ok(certsOnlyB64([issue(req)]));
    },
    async (srv, client) => {
      const key = await generateKey('p256');
      await client({ pop: 'auto' }).simpleenroll((c) => buildCsr({ subject: buildName([['CN', 'pop-dev']]), privateKey: key, ...(c.challengePassword ? { challengePassword: c.challengePassword } : {}) }));
      const enroll = srv.seen.find((r) => r.path.endsWith('/simpleenroll'))!;
      t.is(enroll.protocol, 'TLSv1.2');
      t.truthy(enroll.tlsUnique);
      t.is(parseCsr(decodeEstBase64(enroll.body)).challengePassword, enroll.tlsUnique!.toString('base64'));
    },
  );
});

test('§3.5: pop=never (or a server not asking) keeps TLS 1.3 and no challengePassword; pop=always forces TLS 1.2', async (t) => {
  await withServer(
    (req) => (req.path.endsWith('/csrattrs') ? httpResponse('204 No Content', {}) : ok(certsOnlyB64([issue(req)]))),
    async (srv, client) => {
      const key = await generateKey('p256');
      const factory = (c: { challengePassword?: string }) => buildCsr({ subject: buildName([['CN', 'no-pop']]), privateKey: key, ...(c.challengePassword ? { challengePassword: c.challengePassword } : {}) });
      await client({ pop: 'auto' }).simpleenroll(factory);
      await client({ pop: 'always' }).simpleenroll(factory);
      const enrolls = srv.seen.filter((r) => r.path.endsWith('/simpleenroll'));
      t.is(enrolls[0]!.protocol, 'TLSv1.3');
      t.is(parseCsr(decodeEstBase64(enrolls[0]!.body)).challengePassword, undefined);
      t.is(enrolls[1]!.protocol, 'TLSv1.2');
      t.is(parseCsr(decodeEstBase64(enrolls[1]!.body)).challengePassword, enrolls[1]!.tlsUnique!.toString('base64'));
    },
  );
});

/** The same SignedData with indefinite lengths, as BER encoders write it. */
function berCertsOnly(certs: Buffer[]): Buffer {
  const eoc = Buffer.from([0, 0]);
  const indef = (tag: number, ...parts: Buffer[]) => Buffer.concat([Buffer.from([tag, 0x80]), ...parts, eoc]);
  const sd = indef(0x30, smallInteger(1), Buffer.from([0x31, 0]), seq(oid(OID.data)), indef(0xa0, ...certs), Buffer.from([0x31, 0]));
  return indef(0x30, oid(OID.signedData), indef(0xa0, sd));
}

test('response bodies in every form servers send: PEM PKCS#7, PEM certificates, raw DER, BER, odd content-type parameters', async (t) => {
  const forms: Array<(cert: Buffer) => Buffer> = [
    (c) => ok(toPem('PKCS7', buildCertsOnly([c]))),
    (c) => ok(toPem('CERTIFICATE', c) + toPem('CERTIFICATE', ca.der)),
    (c) => ok(buildCertsOnly([c])),
    (c) => ok(encodeEstBase64(berCertsOnly([c]))),
    (c) => ok(encodeEstBase64(buildCertsOnly([ca.der, c]), '\r\n'), 'Application/PKCS7-MIME; smime-type="certs-only"; name=cert.p7c'),
    (c) => ok(Buffer.from(buildCertsOnly([c])).toString('base64'), 'application/x-pkcs7-mime'),
  ];
  await withServer((req, i) => forms[i]!(issue(req)), async (_srv, client) => {
    for (let i = 0; i < forms.length; i++) {
      const { der } = await makeCsrDer(`form-${i}`);
      const r = await client().simpleenroll(der);
      t.is(new X509Certificate(r.certificate).subject, `CN=form-${i}`, `form ${i}`);
    }
  });
});

test('answers that are not what was asked for are refused: wrong type, someone else\'s certificate', async (t) => {
  const other = await makeCsrDer('someone-else');
  await withServer(
    (req, i) => (i === 0 ? ok(certsOnlyB64([issue(req)]), 'text/html') : ok(certsOnlyB64([issueForCsr(ca, other.der)]))),
    async (_srv, client) => {
      const { der } = await makeCsrDer('me');
      const e1 = await t.throwsAsync(client().simpleenroll(der));
      t.true(isEstError(e1, 'badGateway'));
      t.regex(e1!.message, /Content-Type "text\/html"/);
      const e2 = await t.throwsAsync(client().simpleenroll(der));
      t.true(isEstError(e2, 'badGateway'));
      t.regex(e2!.message, /no certificate in the answer carries the requested public key/);
    },
  );
});

test('server errors map to kinds; 503 keeps its Retry-After', async (t) => {
  await withServer(
    () => httpResponse('503 Service Unavailable', { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '30' }, 'parent CA\nunreachable\n'),
    async (_srv, client) => {
      const e = await t.throwsAsync(client().cacerts());
      t.true(isEstError(e, 'unavailable'));
      t.is((e as EstError).retryAfter, 30);
      t.is(e!.message, 'cacerts: server answered 503 Service Unavailable: parent CA unreachable');
    },
  );
});

test('transport failures are `unavailable` with where and why: refused, untrusted server, timeout', async (t) => {
  const closed = await freePort();
  const refused = new EstClient({ url: `https://127.0.0.1:${closed}/.well-known/est`, trust: ca.pem });
  const e1 = await t.throwsAsync(refused.cacerts());
  t.true(isEstError(e1, 'unavailable'));
  t.regex(e1!.message, /cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/);

  const otherCa = await makeCa(dir, 'unrelated root');
  await withServer(() => ok(certsOnlyB64([ca.der])), async (_srv, client) => {
    const e2 = await t.throwsAsync(client({ trust: otherCa.pem }).cacerts());
    t.true(isEstError(e2, 'unavailable'));
    t.regex(e2!.message, /cannot verify the server certificate/);
  });
  await withServer(() => new Promise<Buffer>(() => {}), async (_srv, client) => {
    const e3 = await t.throwsAsync(client({ timeoutMs: 300 }).cacerts());
    t.true(isEstError(e3, 'upstreamTimeout'));
  });
});

test('TLS client certificate is presented when configured', async (t) => {
  const { der, key } = await makeCsrDer('tls-client');
  const cert = issueForCsr(ca, der);
  await withServer(() => ok(certsOnlyB64([ca.der])), async (srv, client) => {
    await client({ clientCert: { cert: toPem('CERTIFICATE', cert), key: privateKeyPem(key) } }).cacerts();
    t.true(srv.seen[0]!.peerCert!.equals(cert));
  });
});
