// Two layers given the same Redis and key_prefix (a copied config) each serve
// their own CA chain under the same label name: a chain's key in the cache
// names where it comes from, not just the label.
import test from 'ava';
import { Redis } from 'ioredis';
import { chainCacheKey } from '../../src/server/gateway.js';
import { certsOf, get } from '../helpers/est.js';
import { startTestGateway } from '../helpers/gateway.js';
import { SHARED_REDIS_URL, deleteKeys, uniquePrefix } from './helpers.js';

test('two layers sharing a key_prefix serve each their own chain for the same label name', async (t) => {
  const prefix = uniquePrefix();
  const redis = { url: SHARED_REDIS_URL, key_prefix: prefix };
  const plant = await startTestGateway({ cas: { root: { subject: '/CN=plant A root' } }, redis });
  t.teardown(() => plant.close());
  const other = await startTestGateway({ cas: { root: { subject: '/CN=plant B root' } }, redis });
  t.teardown(() => other.close());
  const admin = new Redis(SHARED_REDIS_URL);
  t.teardown(async () => {
    await deleteKeys(admin, prefix);
    admin.disconnect();
  });
  for (const [gw, cn] of [[plant, 'plant A root'], [other, 'plant B root'], [plant, 'plant A root']] as const) {
    const res = await get(gw, 'cacerts');
    t.is(res.status, 200);
    t.deepEqual(certsOf(res.body).map((c) => c.subject), [`CN=${cn}`]);
  }
  // both are in the shared cache, each under a key naming its source
  const keys = await admin.keys(`${prefix}cacerts:default:*`);
  t.is(keys.length, 2);
  t.true(keys.includes(`${prefix}cacerts:${chainCacheKey('default', plant.config.labels.default!, plant.gateway.pki.cas.get('root'))}`));
});
