// The parent's CRLs as a forwarding layer takes them (src/server/upstream-crls.ts),
// with a scripted parent: what it refuses (a CRL no known CA signed, a cRLNumber
// going backwards), what it keeps (a CRL the parent stops listing, until its
// nextUpdate), and how /crl/ names collide with a local CA's (ours wins).
import test from 'ava';
import { MemoryCaChainCache } from '../../src/cache/memory-cache.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { buildCrl } from '../../src/pki/crl.js';
import { ServedCrls } from '../../src/server/served-crls.js';
import { UpstreamCrls } from '../../src/server/upstream-crls.js';
import { Ledger, ledgerCas } from '../../src/ledger/ledger.js';
import { captureLogger, eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof scratchDir>>;
let known: CaMaterial;
let stranger: CaMaterial;
test.before(async () => {
  tmp = await scratchDir('estgw-upcrl-');
  known = await createRootCa('known', tmp.path('known'), { subject: [['CN', 'known CA']], days: 30 });
  stranger = await createRootCa('stranger', tmp.path('stranger'), { subject: [['CN', 'stranger CA']], days: 30 });
});
test.after.always(async () => tmp?.remove());

const HOUR = 3600_000;
const crl = (ca: CaMaterial, number: number, serials: string[] = [], nextInMs = HOUR) => {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  return buildCrl(ca, { number, thisUpdate: now, nextUpdate: new Date(now.getTime() + nextInMs), entries: serials.map((s) => ({ serialHex: s, revokedAt: now, reason: 'keyCompromise' })) });
};

/** A parent whose /crl/ answers are set by the test. */
function scriptedParent() {
  const served = new Map<string, Buffer>();
  const p = {
    served,
    indexFetches: 0,
    client: {
      async getResource(path: string) {
        if (path === '/crl/') p.indexFetches++;
        if (path === '/crl/') return { status: 200, body: Buffer.from(JSON.stringify({ crls: [...served.keys()].map((name) => ({ name })) })) };
        const der = served.get(/^\/crl\/(.+)\.crl$/.exec(path)?.[1] ?? '');
        return der ? { status: 200, body: der } : { status: 404, body: Buffer.alloc(0) };
      },
      close() {},
    },
  };
  return p;
}

function upstream(parent: ReturnType<typeof scriptedParent>, log = captureLogger(), cas = () => [known.certDer]) {
  return new UpstreamCrls({
    parent: 'https://parent.test', client: parent.client, cache: new MemoryCaChainCache(), refreshMs: 1, maxStaleMs: HOUR, lockTtlMs: 1000,
    knownCas: cas, logger: log.logger,
  });
}

test('a CRL no known CA signed is dropped with a warning; a known CA\'s is held', async (t) => {
  const parent = scriptedParent();
  parent.served.set('known', crl(known, 1));
  parent.served.set('stranger', crl(stranger, 1));
  const log = captureLogger();
  const u = upstream(parent, log);
  await u.sync();
  t.deepEqual(u.crls().map((h) => h.name), ['known']);
  t.is(log.count('no CA this layer knows signed'), 1);
});

test('a cRLNumber that goes backwards is refused for the newer one held; a CRL the parent stops listing is kept until its nextUpdate', async (t) => {
  const parent = scriptedParent();
  parent.served.set('known', crl(known, 5, ['0a']));
  const log = captureLogger();
  const u = upstream(parent, log);
  await u.sync();
  t.is(u.crls()[0]!.crl.number, 5n);
  // crl_refresh is 1 ms: each sync refreshes in the background, the next one takes the answer
  const syncUntil = (cond: () => boolean) => eventually(async () => (await u.sync(), cond()), 5000);
  parent.served.set('known', crl(known, 4));
  t.true(await syncUntil(() => log.count('number goes backwards') >= 1));
  t.is(u.crls()[0]!.crl.number, 5n, 'the older CRL did not replace the newer');
  t.deepEqual(u.crls()[0]!.crl.revoked.map((r) => r.serialHex), ['0a']);

  parent.served.set('known', crl(known, 6, ['0a', '0b']));
  t.true(await syncUntil(() => u.crls()[0]?.crl.number === 6n), 'a newer one is taken');
  parent.served.clear();
  const asked = parent.indexFetches;
  t.true(await syncUntil(() => parent.indexFetches >= asked + 2), 'the parent was asked again, twice');
  t.is(u.crls()[0]?.crl.number, 6n, 'kept while its nextUpdate is ahead, though the parent no longer lists it');
});

test('/crl/ merges local and upstream CRLs; an upstream CRL named like a local CA is left out, with a warning', async (t) => {
  const parent = scriptedParent();
  parent.served.set('root', crl(stranger, 3));
  parent.served.set('known', crl(known, 3));
  const log = captureLogger();
  const u = upstream(parent, captureLogger(), () => [known.certDer, stranger.certDer]);
  await u.sync();
  const local = await createRootCa('root', tmp.path('local-root'), { subject: [['CN', 'local root']], days: 30 });
  const ledger = Ledger.open(tmp.path('data'), ledgerCas({ cas: { root: {} } } as never, new Map([['root', local]])));
  t.teardown(() => ledger.close());
  const served = new ServedCrls(ledger, [u], log.logger);
  const index = served.index();
  t.deepEqual(index.map((e) => [e.name, e.issuer]), [['root', 'CN=local root'], ['known', 'CN=known CA']]);
  t.is(log.count('name of a local CA'), 1);
  t.true(served.localCrl('root')!.equals(ledger.crl('root')!));
  t.true(served.upstreamCrl('known')!.equals(parent.served.get('known')!));
  t.is(served.upstreamCrl('root'), undefined);
});
