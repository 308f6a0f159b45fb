// RFC 7030 §3.5 proof-of-possession linking: the CSR's challengePassword is
// base64(tls-unique) (RFC 5929 §3.1: the first Finished message of the latest
// handshake), which exists only in TLS 1.2; §3.7: an RA checks it itself.
import test from 'ava';
import type { KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { decodeEstBase64, encodeEstBase64 } from '../../src/est/base64.js';
import { buildCsr } from '../../src/est/csr-build.js';
import { parseCsrAttrs } from '../../src/est/csrattrs.js';
import { buildName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { generateKey } from '../../src/pki/keys.js';
import { type ClientCert, foreignCa, leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { DEV_AUTH, assertReason, certsOf, estUrl, get, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';
import { rawRequest, wireExchange } from '../helpers/raw-tls.js';

let gw: TestGateway;
let key: KeyObject;
let ra: ClientCert;
let device: ClientCert;
let makerRa: ClientCert; // id-kp-cmcRA, but issued by a bootstrap CA in client_trust
let tmp: Awaited<ReturnType<typeof scratchDir>>;
test.before(async () => {
  tmp = await scratchDir('estgw-pop-');
  const boot = await foreignCa(tmp.dir, 'bootstrap');
  gw = await startTestGateway({ labels: { default: {}, pop: { require_pop: true, client_trust: [boot.pemFile] } } });
  key = await generateKey('p256');
  const root = gw.gateway.pki.cas.get('root')!;
  ra = await leafCert(root, 'plant-ra', { eku: [OID.clientAuth, OID.cmcRA] });
  device = await leafCert(root, 'pop-device', { key });
  makerRa = await leafCert(boot.ca, 'maker-ra', { eku: [OID.clientAuth, OID.cmcRA] });
});
test.after.always(async () => {
  await gw?.close();
  await tmp?.remove();
});

const csrB64 = (cn: string, challengePassword?: string) =>
  encodeEstBase64(buildCsr({ subject: buildName([['CN', cn]]), privateKey: key, ...(challengePassword === undefined ? {} : { challengePassword }) }));

interface PopOptions {
  label?: string;
  op?: 'simpleenroll' | 'simplereenroll';
  tls?: 'TLSv1.2' | 'TLSv1.3';
  /** challengePassword from the live socket; undefined = none in the CSR. */
  password?: (s: TLSSocket) => string | undefined;
  cert?: ClientCert;
  auth?: string | null;
}

/** Node https with agent false: the CSR is built once the handshake is done, from that very connection. */
function popEnroll(cn: string, o: PopOptions = {}) {
  const auth = o.auth === undefined ? DEV_AUTH : o.auth;
  return httpsRequest(estUrl(gw, o.op ?? 'simpleenroll', o.label), {
    ca: gw.caPem,
    maxVersion: o.tls ?? 'TLSv1.2',
    headers: { 'Content-Type': 'application/pkcs10', ...(auth === null ? {} : { Authorization: auth }) },
    ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
    beforeBody: (s) => csrB64(cn, o.password?.(s)),
  });
}

/** The client's view of tls-unique after a full handshake: its own Finished. */
const tlsUnique = (s: TLSSocket) => s.getFinished()!.toString('base64');

test('§3.5: a challengePassword equal to base64(tls-unique) over TLS 1.2 is accepted', async (t) => {
  const res = await popEnroll('pop-ok', { password: tlsUnique });
  t.is(res.socket.getProtocol(), 'TLSv1.2');
  t.is(issuedCert(t, res).subject, 'CN=pop-ok');
});

test('§3.5: a challengePassword that is not this connection\'s tls-unique is 400', async (t) => {
  const res = await popEnroll('pop-wrong', { password: (s) => Buffer.from(s.getFinished()!.map((b) => b ^ 1)).toString('base64') });
  assertReason(t, res, 400, /tls-unique/);
});

test('§3.5: tls-unique of another connection (a replayed CSR) is 400', async (t) => {
  let earlier = '';
  const first = await popEnroll('pop-first', { password: (s) => (earlier = tlsUnique(s)) });
  t.is(first.status, 200);
  const replay = await popEnroll('pop-replay', { password: () => earlier });
  assertReason(t, replay, 400, /tls-unique/);
});

test('§3.5: the server\'s Finished (what a confused client might send) is 400', async (t) => {
  assertReason(t, await popEnroll('pop-peer', { password: (s) => s.getPeerFinished()!.toString('base64') }), 400);
});

test('a challengePassword over TLS 1.3 (no tls-unique there) is 400 with a reason', async (t) => {
  const res = await popEnroll('pop-13', { tls: 'TLSv1.3', password: () => 'AAAAAAAAAAAAAAAA' });
  t.is(res.socket.getProtocol(), 'TLSv1.3');
  assertReason(t, res, 400, /TLS 1\.3|tls-unique/);
});

test('without require_pop a CSR without challengePassword is fine, over TLS 1.2 and 1.3', async (t) => {
  issuedCert(t, await popEnroll('nopop-12'));
  issuedCert(t, await popEnroll('nopop-13', { tls: 'TLSv1.3' }));
});

test('require_pop: a CSR without challengePassword is 400, naming tls-unique', async (t) => {
  assertReason(t, await popEnroll('req-none', { label: 'pop' }), 400, /tls-unique/);
});

test('require_pop: over TLS 1.3 it is 400, with or without a challengePassword', async (t) => {
  assertReason(t, await popEnroll('req-13', { label: 'pop', tls: 'TLSv1.3' }), 400, /TLS 1\.2|tls-unique/);
  assertReason(t, await popEnroll('req-13b', { label: 'pop', tls: 'TLSv1.3', password: () => 'x' }), 400, /tls-unique/);
});

test('require_pop: the right tls-unique is 200; the wrong one is 400', async (t) => {
  issuedCert(t, await popEnroll('req-ok', { label: 'pop', password: tlsUnique }));
  assertReason(t, await popEnroll('req-bad', { label: 'pop', password: () => 'bm90IHRscy11bmlxdWU=' }), 400, /tls-unique/);
});

test('require_pop applies to simplereenroll too (certificate in TLS, tls-unique in the CSR)', async (t) => {
  const opts = { label: 'pop', op: 'simplereenroll', cert: device, auth: null } as const;
  assertReason(t, await popEnroll('pop-device', opts), 400, /tls-unique/);
  const ok = await popEnroll('pop-device', { ...opts, password: tlsUnique });
  t.is(issuedCert(t, ok).subject, 'CN=pop-device');
});

test('§3.7: a client certificate with id-kp-cmcRA from the label\'s CA is exempt (the RA checked PoP itself)', async (t) => {
  const res = await popEnroll('behind-ra', { label: 'pop', cert: ra, auth: null });
  t.is(issuedCert(t, res).subject, 'CN=behind-ra');
  t.true(gw.audit().some((l) => l.subject === 'CN=behind-ra' && l.ra === true && l.identity === 'cert:ra/plant-ra'));
});

// Who is an RA: a cmcRA certificate counts only when it chains to the label's own PKI, never
// merely to client_trust, which admits bootstrap and manufacturer certificates for devices.
test('§3.7: a cmcRA certificate from a bootstrap (client_trust) CA is not an RA: PoP is still required', async (t) => {
  const res = await popEnroll('behind-maker-ra', { label: 'pop', cert: makerRa, auth: null });
  assertReason(t, res, 400, /tls-unique/);
});

test('§3.7: Basic credentials alone do not make an RA', async (t) => {
  assertReason(t, await popEnroll('not-ra', { label: 'pop' }), 400);
});

test('§4.5: csrattrs of a require_pop label lists challengePassword (1.2.840.113549.1.9.7); the plain label does not', async (t) => {
  const res = await get(gw, 'csrattrs', 'pop');
  t.is(res.status, 200);
  t.is(res.rawHeaders.find(([k]) => k === 'Content-Type')?.[1], 'application/csrattrs');
  const attrs = parseCsrAttrs(decodeEstBase64(res.body));
  t.true(attrs.some((a) => 'oid' in a && a.oid === '1.2.840.113549.1.9.7'));
  const plain = await get(gw, 'csrattrs');
  t.is(plain.status, 200);
  t.false(parseCsrAttrs(decodeEstBase64(plain.body)).some((a) => 'oid' in a && a.oid === '1.2.840.113549.1.9.7'));
});

test('RFC 5929 §3.1: on a resumed TLS 1.2 session tls-unique is the server\'s Finished (the first of that handshake)', async (t) => {
  const first = await wireExchange(gw.port, rawRequest('GET', '/.well-known/est/cacerts', { Connection: 'close' }), { ca: gw.caPem, maxVersion: 'TLSv1.2' });
  t.is(first.responses[0]?.status, 200);
  const session = first.socket.getSession();
  t.truthy(session);
  let reused = false;
  const body = (s: TLSSocket) => {
    reused = s.isSessionReused();
    const b64 = csrB64('pop-resumed', s.getPeerFinished()!.toString('base64'));
    return rawRequest('POST', '/.well-known/est/pop/simpleenroll', { Connection: 'close', 'Content-Type': 'application/pkcs10', Authorization: DEV_AUTH }, b64);
  };
  const x = await wireExchange(gw.port, body, { ca: gw.caPem, maxVersion: 'TLSv1.2', session: session! });
  t.true(reused, 'the session was resumed');
  t.is(x.responses[0]?.status, 200, x.responses[0]?.body.toString());
  t.is(certsOf(x.responses[0]!.body)[0]?.subject, 'CN=pop-resumed');
});
