// What a client at the bottom sees for each way a parent layer can answer a
// forwarded request: 202 + Retry-After, a refusal, garbage, silence, a closed
// port; with and without islanded fallback. And a libest-style parent (401
// challenge before Basic, Connection: close, TLS 1.2 only) that gets only the
// layer's own credentials, never the client's.
import test from 'ava';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import { type Socket, createServer as createTcpServer } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { decodeEstBase64, encodeEstBase64, toPem } from '../../src/est/base64.js';
import { parseCsr } from '../../src/est/csr.js';
import { OID } from '../../src/est/oids.js';
import { buildCertsOnly } from '../../src/est/pkcs7.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { Signer } from '../../src/pki/issuance.js';
import { freePort } from '../cache/helpers.js';
import { leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { CERTS_ONLY, DEV_AUTH, assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { makeCsr } from '../helpers/pki.js';

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  tls: string | null;
  peerCn: string | undefined;
}

type Answer = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface FakeParent {
  url: string;
  seen: Seen[];
  /** Most /cacerts requests open at the same moment (a silent parent never closes one itself). */
  maxOpenCacerts?: number;
  close(): Promise<void>;
}

let scratch: Awaited<ReturnType<typeof scratchDir>>;
let parentCa: CaMaterial;
let parentTrust: string;
let serverTls: { cert: string; key: string };
const parents: FakeParent[] = [];
let tcpSilent: { port: number; close: () => Promise<void> };
let gw: TestGateway;

const text = (res: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(reason), ...headers });
  res.end(reason);
};
const certsOnly = (res: ServerResponse, type: string, certs: Buffer[]) => {
  const body = encodeEstBase64(buildCertsOnly(certs));
  res.writeHead(200, { 'Content-Type': type, 'Content-Transfer-Encoding': 'base64', 'Content-Length': body.length });
  res.end(body);
};
/** What a working parent issues: the CSR's subject and key, signed by the test CA. */
const issue = (body: Buffer) => {
  const csr = parseCsr(decodeEstBase64(body));
  return new Signer(parentCa).issue({ subjectDer: csr.subjectDer, spki: csr.spki, key: csr.key, validityDays: 1, extKeyUsage: [OID.clientAuth] }).der;
};

/** An HTTPS parent that answers /cacerts with the test CA (unless `answerAll`) and enrollments with `answer`. */
async function fakeParent(answer: Answer, o: { answerAll?: boolean } = {}): Promise<FakeParent> {
  let p: FakeParent;
  const seen: Seen[] = [];
  let openCacerts = 0;
  const server = createHttpsServer(
    { ...serverTls, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      if (req.url!.endsWith('/cacerts')) {
        openCacerts++;
        p.maxOpenCacerts = Math.max(p.maxOpenCacerts ?? 0, openCacerts);
        res.once('close', () => openCacerts--);
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        // no CRLs here, as at a libest parent: the layer below has none to check against (not counted)
        if (req.url!.startsWith('/crl/') && !o.answerAll) return text(res, 404, 'no CRLs here\n');
        const sock = req.socket as TLSSocket;
        seen.push({ method: req.method!, path: req.url!, headers: req.headers, body: body.toString('latin1'), tls: sock.getProtocol(), peerCn: sock.getPeerX509Certificate()?.subject.replace(/^.*CN=/s, '') });
        if (req.url!.endsWith('/cacerts') && !o.answerAll) certsOnly(res, 'application/pkcs7-mime', [parentCa.certDer]);
        else answer(req, res, body);
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  p = {
    url: `https://127.0.0.1:${port}/.well-known/est`,
    seen,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  parents.push(p);
  return p;
}

const UPSTREAM_USER = 'bottom-layer';
const UPSTREAM_PASSWORD = 'upstream-secret-1';
/**
 * libest's estserver as the captures in test/fixtures/vectors/libest show it:
 * TLS 1.2 only, HTTP/1.1 written by hand, a 401 challenge (no Connection
 * header) before it looks at Basic credentials, and every connection closed
 * after one answer (the 200s also say `Connection: close`).
 */
async function libestParent(): Promise<FakeParent> {
  const seen: Seen[] = [];
  const expected = `Basic ${Buffer.from(`${UPSTREAM_USER}:${UPSTREAM_PASSWORD}`).toString('base64')}`;
  const server = createTlsServer({ ...serverTls, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false }, (sock) => {
    let buf = Buffer.alloc(0);
    let answered = false;
    // one answer, then the connection is closed for good (what libest's close() does)
    const answer = (bytes: string) => {
      answered = true;
      sock.end(bytes, () => sock.destroy());
    };
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      if (answered) return;
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const body = buf.subarray(end + 4);
      if (body.length < Number(headers['content-length'] ?? 0)) return;
      const [method, path] = line!.split(' ') as [string, string];
      seen.push({ method, path, headers, body: body.toString('latin1'), tls: sock.getProtocol(), peerCn: sock.getPeerX509Certificate()?.subject.replace(/^.*CN=/s, '') });
      const ok = (type: string, der: Buffer) => {
        const b64 = encodeEstBase64(der);
        return `HTTP/1.1 200 OK\r\nStatus: 200 OK\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\nContent-Length: ${b64.length}\r\nConnection: close\r\n\r\n${b64}`;
      };
      if (path.endsWith('/cacerts')) answer(ok('application/pkcs7-mime', buildCertsOnly([parentCa.certDer])));
      else if (headers.authorization !== expected) answer('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWWW-Authenticate: Basic realm="estrealm"\r\n\r\n');
      else answer(ok(CERTS_ONLY, buildCertsOnly([issue(body)])));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('secureConnection', (s) => sockets.add(s));
  const p: FakeParent = {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/est`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
  parents.push(p);
  return p;
}

let libest: FakeParent;
let silent: FakeParent;
/** Most connections the TCP-only parent held at once. */
let tcpMaxOpen = 0;
/** What start-up alone did to the silent parents (later enrollments ask again). */
let atStartup: { silentCacerts: number; tcp: number };

test.before(async () => {
  scratch = await scratchDir('estgw-parent-');
  parentCa = await createRootCa('parent', join(scratch.dir, 'parent-ca'), { subject: [['CN', 'fake parent CA']], days: 30 });
  parentTrust = join(scratch.dir, 'parent-trust.pem');
  await writeFile(parentTrust, toPem('CERTIFICATE', parentCa.certDer));
  const tls = await leafCert(parentCa, 'localhost', { eku: [OID.serverAuth], san: [{ type: 'ip', value: '127.0.0.1' }] });
  serverTls = { cert: tls.certPem, key: tls.keyPem };
  const ra = await leafCert(parentCa, 'answers-ra', { eku: [OID.cmcRA, OID.clientAuth] });
  const raFiles = { cert: join(scratch.dir, 'ra.cert.pem'), key: join(scratch.dir, 'ra.key.pem') };
  await writeFile(raFiles.cert, ra.certPem);
  await writeFile(raFiles.key, ra.keyPem);
  const passwordFile = join(scratch.dir, 'upstream.pw');
  await writeFile(passwordFile, `${UPSTREAM_PASSWORD}\n`);

  const pending = await fakeParent((_q, res) => text(res, 202, 'waiting for an operator\n', { 'Retry-After': '7' }));
  const refused = await fakeParent((_q, res) => text(res, 403, 'nope\n'));
  // answers the status named by the CSR's CN (status-400, ...), with a reason naming it
  const statuses = await fakeParent((_q, res, body) => {
    const cn = parseCsr(decodeEstBase64(body)).subject.flat()[0]?.value ?? '';
    const status = Number(/status-(\d{3})/.exec(cn)?.[1] ?? 500);
    const retry = /retry-(\w+)/.exec(cn)?.[1]; // status-503-retry-120: the parent names its own Retry-After
    text(res, status, `parent says ${status}\n`, {
      ...(status === 401 ? { 'WWW-Authenticate': 'Basic realm="parent"' } : {}),
      ...(retry ? { 'Retry-After': retry } : {}),
    });
  });
  const badType = await fakeParent((_q, res) => text(res, 200, '<html>hello</html>\n', { 'Content-Type': 'text/html' }));
  const badPkcs7 = await fakeParent((_q, res) => {
    res.writeHead(200, { 'Content-Type': CERTS_ONLY, 'Content-Length': 17 });
    res.end('bm90IGEgcGtjczcK\n');
  });
  const huge = await fakeParent((_q, res) => text(res, 200, 'A'.repeat(1_100_000), { 'Content-Type': CERTS_ONLY }));
  silent = await fakeParent(() => {}, { answerAll: true });
  libest = await libestParent();
  const tcpServer = createTcpServer((s: Socket) => s.on('error', () => {}));
  const tcpSockets = new Set<Socket>();
  tcpServer.on('connection', (s) => {
    tcpSockets.add(s);
    tcpMaxOpen = Math.max(tcpMaxOpen, [...tcpSockets].filter((x) => !x.destroyed).length);
    s.once('close', () => tcpSockets.delete(s));
  });
  tcpServer.listen(0, '127.0.0.1');
  await once(tcpServer, 'listening');
  tcpSilent = {
    port: (tcpServer.address() as { port: number }).port,
    close: async () => {
      for (const s of tcpSockets) s.destroy();
      tcpServer.close();
      await once(tcpServer, 'close');
    },
  };
  const closedUrl = `https://127.0.0.1:${await freePort()}/.well-known/est`;

  const up = (url: string, extra: Record<string, unknown> = {}) => ({ url, trust: parentTrust, ...raFiles, timeout: 1, connect_timeout: 0.5, ...extra });
  const forward = (url: string, extra: Record<string, unknown> = {}) => ({ mode: 'forward', upstream: up(url, extra) });
  const fallback = (url: string) => ({ mode: 'forward', fallback: 'issue', ca: 'local', upstream: up(url) });
  gw = await startTestGateway({
    cas: { root: {}, local: { create: 'subordinate', parent: 'root', subject: '/CN=bottom islanded CA', path_len: 0 } },
    labels: {
      pending: forward(pending.url),
      refused: forward(refused.url),
      statuses: forward(statuses.url),
      'fb-statuses': fallback(statuses.url),
      badtype: forward(badType.url),
      badp7: forward(badPkcs7.url),
      huge: forward(huge.url),
      'fb-huge': fallback(huge.url),
      silent: forward(silent.url),
      tcp: forward(`https://127.0.0.1:${tcpSilent.port}/.well-known/est`),
      closed: forward(closedUrl),
      libest: forward(libest.url, { username: UPSTREAM_USER, password_file: passwordFile, basic_auth: 'challenge', timeout: 5 }),
      'fb-pending': fallback(pending.url),
      'fb-refused': fallback(refused.url),
      'fb-silent': fallback(silent.url),
      'fb-tcp': fallback(`https://127.0.0.1:${tcpSilent.port}/.well-known/est`),
      'fb-closed': fallback(closedUrl),
    },
  });
  atStartup = { silentCacerts: silent.maxOpenCacerts ?? 0, tcp: tcpMaxOpen };
});

test.after.always(async () => {
  await gw?.close();
  await Promise.all(parents.map((p) => p.close()));
  await tcpSilent?.close();
  await scratch?.remove();
});

async function timedEnroll(label: string, cn: string) {
  const csr = await makeCsr(cn);
  return { res: await enroll(gw, csr.b64, { label }) };
}

const retryAfter = (res: { headers: Record<string, string> }) => Number(res.headers['retry-after']);
const lastAudit = (label: string) => gw.audit().filter((l) => l.label === label && l.op === 'simpleenroll').at(-1);

test('202 + Retry-After: 7 from the parent reaches the client as 202 with Retry-After 7, with or without fallback', async (t) => {
  for (const label of ['pending', 'fb-pending']) {
    const { res } = await timedEnroll(label, `pending-${label}`);
    t.is(res.status, 202, res.body.toString());
    t.is(res.headers['retry-after'], '7');
    t.regex(res.headers['content-type'] ?? '', /^text\/plain/);
    t.is(lastAudit(label)?.islanded, undefined);
  }
});

test("403 from the parent is 403 with the parent's reason, and fallback does not turn a refusal into an islanded certificate", async (t) => {
  for (const label of ['refused', 'fb-refused']) {
    const { res } = await timedEnroll(label, `refused-${label}`);
    assertReason(t, res, 403, /nope/);
    t.is(lastAudit(label)?.islanded, undefined);
  }
});

test("400, 401 and 404 from the parent keep their status and the parent's reason, also with fallback", async (t) => {
  for (const label of ['statuses', 'fb-statuses']) {
    for (const status of [400, 401, 404]) {
      const { res } = await timedEnroll(label, `status-${status}`);
      assertReason(t, res, status, new RegExp(`parent says ${status}`));
      t.is(lastAudit(label)?.islanded, undefined);
    }
  }
});

test("503 and 504 from the parent carry the parent's own Retry-After down (bounded to a day); without one, 30 s", async (t) => {
  for (const status of [503, 504]) {
    const named = (await timedEnroll('statuses', `status-${status}-retry-120`)).res;
    assertReason(t, named, status, new RegExp(`parent says ${status}`));
    t.is(named.headers['retry-after'], '120');
    t.is((await timedEnroll('statuses', `status-${status}-retry-9999999`)).res.headers['retry-after'], '86400');
    t.is((await timedEnroll('statuses', `status-${status}-retry-soon`)).res.headers['retry-after'], '30', 'unparseable: the default');
    t.is((await timedEnroll('statuses', `status-${status}`)).res.headers['retry-after'], '30');
  }
});

test('a 200 that is not a certs-only PKCS#7 (wrong type, not PKCS#7, over 1 MiB) is 502 with Retry-After, also with fallback', async (t) => {
  for (const label of ['badtype', 'badp7', 'huge', 'fb-huge']) {
    const { res } = await timedEnroll(label, `garbage-${label}`);
    assertReason(t, res, 502, /parent/);
    t.true(retryAfter(res) > 0, `Retry-After on ${label}`);
  }
});

test('a parent that completes TLS but never answers: 504 with Retry-After within the configured timeout (1 s)', async (t) => {
  const { res } = await timedEnroll('silent', 'silent-1');
  // the configured timeout, not the connect timeout or a default, ended it
  assertReason(t, res, 504, /did not answer in time \(no answer within 1000 ms\)/);
  t.true(retryAfter(res) > 0);
  t.true(silent.seen.some((s) => s.path.endsWith('/simpleenroll')), 'the request reached the parent');
});

test('a parent that accepts TCP and never speaks TLS: 504 with Retry-After within the connect timeout (0.5 s)', async (t) => {
  const { res } = await timedEnroll('tcp', 'tcp-1');
  assertReason(t, res, 504, /did not answer in time \(did not complete the TLS handshake within 500 ms\)/);
  t.true(retryAfter(res) > 0);
});

test('start-up asks every parent for its chain at once: four silent labels cost one timeout, not four', (t) => {
  // asked one after the other, each request would be closed by its timeout before the next one came
  t.is(atStartup.silentCacerts, 2, 'silent and fb-silent were both waiting on the silent parent at once');
  t.true(atStartup.tcp >= 2, `tcp and fb-tcp held the TCP-only parent at once (${atStartup.tcp})`);
});

test('a closed port: 503 with Retry-After, at once', async (t) => {
  const { res } = await timedEnroll('closed', 'closed-1');
  // refused at once by the kernel, not given up on after a timeout
  assertReason(t, res, 503, /unreachable: .*ECONNREFUSED/);
  t.true(retryAfter(res) > 0);
});

test('with fallback = "issue", a closed port, a silent parent and a TCP-only one issue locally, marked islanded', async (t) => {
  for (const label of ['fb-closed', 'fb-silent', 'fb-tcp']) {
    const { res } = await timedEnroll(label, `island-${label}`);
    const cert = issuedCert(t, res);
    t.is(cert.issuer, 'CN=bottom islanded CA');
    t.is(lastAudit(label)?.islanded, true);
  }
});

test("a libest-style parent: the 401 challenge is answered with the layer's own Basic credentials over TLS 1.2, never the client's", async (t) => {
  const before = libest.seen.length;
  // one after the other: each 401 and each answer closes the connection under the kept-alive agent
  for (let i = 0; i < 5; i++) {
    const { res } = await timedEnroll('libest', `libest-device-${i}`);
    const cert = issuedCert(t, res);
    t.is(cert.subject, `CN=libest-device-${i}`);
    t.is(cert.issuer, 'CN=fake parent CA');
  }
  const enrolls = libest.seen.slice(before).filter((s) => s.path.endsWith('/simpleenroll'));
  t.is(enrolls.length, 10, 'each: the challenge, then the request with credentials');
  const credentials = `Basic ${Buffer.from(`${UPSTREAM_USER}:${UPSTREAM_PASSWORD}`).toString('base64')}`;
  t.deepEqual(enrolls.map((s) => s.headers.authorization), enrolls.map((_s, i) => (i % 2 ? credentials : undefined)));
  t.true(libest.seen.every((s) => s.tls === 'TLSv1.2'));
  t.true(libest.seen.every((s) => s.peerCn === 'answers-ra'), 'the RA certificate was presented upstream');
  const clientSecret = Buffer.from(DEV_AUTH.slice('Basic '.length), 'base64').toString();
  for (const s of libest.seen) {
    const everything = `${JSON.stringify(s.headers)}\n${s.body}`;
    t.false(everything.includes('estpwd') || everything.includes(DEV_AUTH.slice('Basic '.length)) || everything.includes(clientSecret));
  }
});
