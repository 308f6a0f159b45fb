// What a forwarding layer passes down of its parent's OCSP answers
// (src/server/ocsp-relay.ts), with a scripted parent standing for a
// compromised or broken link: only answers the known CA itself signed, about
// exactly the CertIDs asked, with the nonce sent, still current; everything
// else becomes tryLater. What one client can make the others wait for is
// bounded: MAX_IN_FLIGHT relays at a time, the rest tryLater at once.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  type SingleStatus, buildCertId, buildOcspRequest, buildOcspResponse, ocspErrorResponse, parseOcspRequest, parseOcspResponse,
} from '../../src/est/ocsp.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { MAX_CERT_IDS } from '../../src/server/ocsp.js';
import { MAX_IN_FLIGHT, OcspRelay } from '../../src/server/ocsp-relay.js';
import { captureLogger } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let known: CaMaterial;
let impostor: CaMaterial;
let stranger: CaMaterial;
test.before(async () => {
  tmp = await scratchDir('estgw-ocsp-relay-');
  known = await createRootCa('known', tmp.path('known'), { subject: [['CN', 'Plant issuing CA']], days: 30 });
  // the same name, another key: what someone who cannot get the CA's key would sign with
  impostor = await createRootCa('impostor', tmp.path('impostor'), { subject: [['CN', 'Plant issuing CA']], days: 30 });
  stranger = await createRootCa('stranger', tmp.path('stranger'), { subject: [['CN', 'stranger CA']], days: 30 });
});
test.after.always(async () => tmp?.remove());

const HOUR = 3600_000;
const certId = (ca: CaMaterial, serial: string) => buildCertId('sha1', ca.fields.subjectDer, ca.fields.spki, Buffer.from(serial, 'hex'));
const ask = (ids: Buffer[], nonce?: Buffer) => {
  const der = buildOcspRequest(ids, nonce);
  return { der, req: parseOcspRequest(der, { maxCertIds: MAX_CERT_IDS }) };
};
const signed = (by: CaMaterial, ids: Buffer[], o: { status?: SingleStatus; nonce?: Buffer; nextInMs?: number } = {}) => {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  return buildOcspResponse({ certDer: by.certDer, spki: by.fields.spki, key: by.key }, now, ids.map((id) => ({ certId: id, cert: o.status ?? { status: 'good' }, thisUpdate: now, nextUpdate: new Date(now.getTime() + (o.nextInMs ?? HOUR)) })), o.nonce);
};

/** A parent whose /ocsp/ answer the test sets, counting what it was asked. */
function scriptedParent(answer: (reqDer: Buffer) => Promise<{ status: number; body: Buffer }> | { status: number; body: Buffer }) {
  const p = {
    asked: 0,
    client: {
      async getResource(path: string) {
        p.asked++;
        const m = /^\/ocsp\/(.+)$/.exec(path);
        if (!m) return { status: 404, body: Buffer.alloc(0) };
        return answer(Buffer.from(decodeURIComponent(m[1]!), 'base64'));
      },
      close() {},
    },
  };
  return p;
}
const relayTo = (parent: ReturnType<typeof scriptedParent>, log = captureLogger()) =>
  new OcspRelay({ parents: [{ parent: 'https://parent.test', client: parent.client, knownCas: () => [known.certDer] }], logger: log.logger });
const statusOf = (der: Buffer) => parseOcspResponse(der).status;

test('the known CA\'s own answer goes down byte for byte; without a nonce it is reused (bounded), with one it is asked for every time', async (t) => {
  const id = certId(known, '0a0b');
  const parent = scriptedParent((reqDer) => ({ status: 200, body: signed(known, [id], { nonce: parseOcspRequest(reqDer, { maxCertIds: 8 }).nonce }) }));
  const relay = relayTo(parent);
  const plain = ask([id]);
  const first = await relay.relay(plain.req, plain.der);
  t.is(statusOf(first), 'successful');
  t.deepEqual(await relay.relay(plain.req, plain.der), first, 'reused');
  t.is(parent.asked, 1);
  const nonce = ask([id], randomBytes(16));
  const withNonce = await relay.relay(nonce.req, nonce.der);
  const parsed = parseOcspResponse(withNonce);
  t.true(parsed.status === 'successful' && parsed.basic.nonce!.equals(nonce.req.nonce!));
  t.is(parent.asked, 2);
});

test('a forged good (same CA name, another key), a good about another serial, a lost nonce, a stale answer: tryLater, never passed down', async (t) => {
  const id = certId(known, '0c');
  const cases: Array<[string, (reqDer: Buffer) => Buffer]> = [
    ['signed by an impostor with the CA\'s name', () => signed(impostor, [id])],
    ['the real CA\'s good for another certificate', () => signed(known, [certId(known, '0d')])],
    ['the nonce dropped', () => signed(known, [id])],
    ['the nonce replaced', () => signed(known, [id], { nonce: Buffer.alloc(16, 1) })],
    ['past its nextUpdate', (reqDer) => signed(known, [id], { nonce: parseOcspRequest(reqDer, { maxCertIds: 8 }).nonce, nextInMs: -60_000 })],
    ['not DER', () => Buffer.from('<html>proxy error</html>')],
  ];
  for (const [what, forge] of cases) {
    const parent = scriptedParent((reqDer) => ({ status: 200, body: forge(reqDer) }));
    const log = captureLogger();
    const { req, der } = ask([id], randomBytes(16));
    t.is(statusOf(await relayTo(parent, log).relay(req, der)), 'tryLater', what);
    t.is(log.count('OCSP relay to the parent failed'), 1, what);
  }
});

test('the parent down or failing: tryLater; its unsigned refusals (unauthorized, malformedRequest) pass as they are; a CA this layer does not know is not relayed', async (t) => {
  const id = certId(known, '0e');
  const { req, der } = ask([id]);
  const down = scriptedParent(() => Promise.reject(new Error('connect ECONNREFUSED')));
  t.is(statusOf(await relayTo(down).relay(req, der)), 'tryLater');
  t.is(statusOf(await relayTo(scriptedParent(() => ({ status: 500, body: Buffer.from('oops') }))).relay(req, der)), 'tryLater');
  t.is(statusOf(await relayTo(scriptedParent(() => ({ status: 200, body: ocspErrorResponse('internalError') }))).relay(req, der)), 'tryLater');
  t.is(statusOf(await relayTo(scriptedParent(() => ({ status: 200, body: ocspErrorResponse('unauthorized') }))).relay(req, der)), 'unauthorized');
  t.is(statusOf(await relayTo(scriptedParent(() => ({ status: 200, body: ocspErrorResponse('malformedRequest') }))).relay(req, der)), 'malformedRequest');
  const never = scriptedParent(() => ({ status: 200, body: signed(stranger, [certId(stranger, '01')]) }));
  const foreign = ask([certId(stranger, '01')]);
  t.is(statusOf(await relayTo(never).relay(foreign.req, foreign.der)), 'unauthorized');
  t.is(never.asked, 0);
});

test(`a parent that hangs holds at most ${MAX_IN_FLIGHT} relays; the next request gets tryLater at once, and all finish once it answers`, async (t) => {
  const id = certId(known, '0f');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const parent = scriptedParent(async (reqDer) => {
    await gate;
    return { status: 200, body: signed(known, [id], { nonce: parseOcspRequest(reqDer, { maxCertIds: 8 }).nonce }) };
  });
  const relay = relayTo(parent);
  const waiting = Array.from({ length: MAX_IN_FLIGHT }, () => {
    const { req, der } = ask([id], randomBytes(16));
    return relay.relay(req, der);
  });
  const extra = ask([id], randomBytes(16));
  t.is(statusOf(await relay.relay(extra.req, extra.der)), 'tryLater', 'answered while the others still wait');
  t.is(parent.asked, MAX_IN_FLIGHT);
  release();
  t.deepEqual((await Promise.all(waiting)).map(statusOf), Array(MAX_IN_FLIGHT).fill('successful'));
  // the slots are free again
  const after = ask([id], randomBytes(16));
  t.is(statusOf(await relay.relay(after.req, after.der)), 'successful');
});
