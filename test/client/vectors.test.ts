// The client must accept every 200 answer captured from libest and globalsign
// (shared/vectors), replayed byte for byte over TLS, and surface their errors on one line.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EstClient } from '../../src/transport/est-client.js';
import { parseCacertsResponse, parseCsrAttrsResponse, parseEnrollResponse, parseServerKeygenResponse } from '../../src/transport/response.js';
import { isEstError } from '../../src/errors.js';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { parseCertificate } from '../../src/est/certificate.js';
import { parseCsr } from '../../src/est/csr.js';
import { spkiDer } from '../../src/pki/keys.js';
import { type Capture, VECTORS_DIR, loadCaptures } from '../helpers/vectors.js';
import type { ServerTls } from '../../src/pki/ca.js';
import { type TestCa, tlsFixture } from './support/pki.js';
import { type TinyServer, startTinyServer } from './support/tiny-server.js';

type Peer = 'libest' | 'globalsign';
const PEERS: Peer[] = ['libest', 'globalsign'];

const pairs = (peer: Peer) => {
  const reqs = loadCaptures(peer, 'request');
  const ress = loadCaptures(peer, 'response');
  return reqs.map((req, i) => ({ req, res: ress[i]!, op: req.startLine.split(' ')[1]!.split('/').pop()!, status: Number(ress[i]!.startLine.split(' ')[1]) }));
};
const asResponse = (c: Capture) => ({ status: Number(c.startLine.split(' ')[1]), statusMessage: '', headers: c.headers, body: c.body });
const csrOf = (c: Capture) => decodeEstBase64(c.body);

let dir: string;
let ca: TestCa;
let tls: ServerTls;
test.before(async () => {
  ({ dir, ca, tls } = await tlsFixture('estgw-client-vectors-', 'vector replay root'));
});
test.after.always(async () => rm(dir, { recursive: true, force: true }));

/** Replays the given captured responses in order, one per connection, exactly as recorded. */
const replay = (captures: Capture[]): Promise<TinyServer> => startTinyServer(tls, (_req, i) => captures[Math.min(i, captures.length - 1)]!.raw);

for (const peer of PEERS) {
  test(`${peer}: every 200 response parses (pure parsers)`, async (t) => {
    const root = new X509Certificate(await readFile(join(VECTORS_DIR, peer, 'ca.pem')));
    let n = 0;
    for (const { req, res, op, status } of pairs(peer)) {
      if (status !== 200) continue;
      n++;
      const r = asResponse(res);
      if (op === 'cacerts') {
        const certs = parseCacertsResponse(r);
        t.true(certs.some((c) => new X509Certificate(c).fingerprint256 === root.fingerprint256), `${res.name}: the root is in /cacerts`);
      } else if (op === 'simpleenroll' || op === 'simplereenroll') {
        const certs = parseEnrollResponse(r, op);
        t.is(certs.length, 1, res.name);
        t.true(parseCertificate(certs[0]!).spki.equals(parseCsr(csrOf(req)).spki), `${res.name}: carries the CSR's key`);
        t.true(new X509Certificate(certs[0]!).verify(root.publicKey), res.name);
      } else if (op === 'csrattrs') {
        t.true(Array.isArray(parseCsrAttrsResponse(r)), res.name);
      } else if (op === 'serverkeygen') {
        const k = parseServerKeygenResponse(r);
        t.true(k.certificates.some((c) => parseCertificate(c).spki.equals(spkiDer(k.privateKey))), `${res.name}: the key matches the certificate`);
      } else t.fail(`unexpected op ${op}`);
    }
    t.true(n >= 4);
  });
}

test('libest: 401 challenge, then Basic on a new connection, then certs-only (02 → 03)', async (t) => {
  const p = pairs('libest');
  const srv = await replay([p[1]!.res, p[2]!.res]);
  const c = new EstClient({ url: srv.url, trust: ca.pem, username: 'estuser', password: 'estpwd', basicAuth: 'challenge', pop: 'never' });
  try {
    const csr = csrOf(p[2]!.req);
    const r = await c.simpleenroll(csr);
    t.is(new X509Certificate(r.certificate).subject, 'CN=libest-client-1');
    t.deepEqual(r.extra, []);
    t.is(srv.seen.length, 2);
    t.is(srv.seen[0]!.headers.authorization, undefined, 'no credentials before the challenge');
    t.is(srv.seen[1]!.headers.authorization, `Basic ${Buffer.from('estuser:estpwd').toString('base64')}`);
    t.is(srv.seen[1]!.path, '/.well-known/est/simpleenroll');
  } finally {
    c.close();
    await srv.close();
  }
});

test('libest: serverkeygen multipart with a PKCS#1 key labelled application/pkcs8 (05 → 06)', async (t) => {
  const p = pairs('libest');
  const srv = await replay([p[4]!.res, p[5]!.res]);
  const c = new EstClient({ url: srv.url, trust: ca.pem, username: 'estuser', password: 'estpwd', basicAuth: 'challenge', pop: 'never' });
  try {
    const r = await c.serverkeygen(csrOf(p[5]!.req));
    t.is(r.privateKey.asymmetricKeyType, 'rsa');
    t.is(r.privateKey.asymmetricKeyDetails?.modulusLength, 4096);
    t.true(parseCertificate(r.certificate).spki.equals(spkiDer(r.privateKey)));
  } finally {
    c.close();
    await srv.close();
  }
});

test('libest and globalsign: /cacerts and /csrattrs through the client (01, 04 / 01, 02)', async (t) => {
  for (const peer of PEERS) {
    const p = pairs(peer);
    const cacerts = p.find((x) => x.op === 'cacerts')!;
    const csrattrs = p.find((x) => x.op === 'csrattrs')!;
    const srv = await replay([cacerts.res, csrattrs.res]);
    const c = new EstClient({ url: srv.url, trust: ca.pem });
    try {
      const certs = await c.cacerts();
      t.is(certs.length, 1, peer);
      const attrs = await c.csrattrs();
      t.is(attrs.length, peer === 'libest' ? 4 : 0, peer);
    } finally {
      c.close();
      await srv.close();
    }
  }
});

test('globalsign: chunked serverkeygen with CRLF base64 and certs-only enrollment (04, 03)', async (t) => {
  const p = pairs('globalsign');
  const keygen = p.find((x) => x.op === 'serverkeygen')!;
  const enroll = p.find((x) => x.op === 'simpleenroll')!;
  const srv = await replay([keygen.res, enroll.res]);
  const c = new EstClient({ url: srv.url, trust: ca.pem, username: 'u', password: 'p', pop: 'never' });
  try {
    const k = await c.serverkeygen(csrOf(keygen.req));
    t.true(parseCertificate(k.certificate).spki.equals(spkiDer(k.privateKey)));
    const e = await c.simpleenroll(csrOf(enroll.req));
    t.is(new X509Certificate(e.certificate).subject, 'CN=gs-client-1');
  } finally {
    c.close();
    await srv.close();
  }
});

test('errors come back as EstError kinds with the server\'s reason on one line (libest 08, globalsign 05)', async (t) => {
  const libest08 = pairs('libest')[7]!;
  const gs05 = pairs('globalsign')[4]!;
  const srv = await replay([libest08.res, gs05.res]);
  const c = new EstClient({ url: srv.url, trust: ca.pem, pop: 'never' });
  try {
    const e1 = await t.throwsAsync(c.simplereenroll(csrOf(libest08.req)));
    t.true(isEstError(e1, 'unauthorized'));
    t.is(e1!.message, 'simplereenroll: server answered 401 Unauthorized: Error 401: Unauthorized The server was unable to authorize the request.');
    const e2 = await t.throwsAsync(c.simplereenroll(csrOf(gs05.req)));
    t.true(isEstError(e2, 'forbidden'));
    t.is(e2!.message, 'simplereenroll: server answered 403 Forbidden: 403 client certificate must be provided for /simplereenroll');
    t.false(e2!.message.includes('\n'));
  } finally {
    c.close();
    await srv.close();
  }
});
