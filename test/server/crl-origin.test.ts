// [upstream] crl_origin: a forwarding layer fetches its parent's CRLs from
// another origin than its EST parent (for a parent such as libest's estproxy,
// which answers /crl/ with 404). Three real gateways on loopback: the bottom
// forwards EST to `est`, fetches CRLs from `crls`, and serves what it fetched
// at its own /crl/; `est`'s CRL, which it would fetch without crl_origin, is not there.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { validateConfig } from '../../src/config/load.js';
import { eventually } from '../cache/helpers.js';
import { scratchDir } from '../helpers/cli.js';
import { crlIndex, startTestGateway } from '../helpers/gateway.js';

/** A gateway whose one CA (and TLS issuer) is called `name`. */
const named = (name: string, o: Parameters<typeof startTestGateway>[0] = {}) =>
  startTestGateway({ cas: { [name]: { subject: `/CN=${name} CA` } }, server: { tls_issuer: name }, labels: { default: { ca: name } }, ...o });

test('the bottom serves the CRL of the crl_origin gateway, not of its EST parent', async (t) => {
  const tmp = await scratchDir('estgw-crl-origin-');
  t.teardown(() => tmp.remove());
  const est = await named('est');
  t.teardown(() => est.close());
  const crls = await named('crls');
  t.teardown(() => crls.close());
  // one trust file verifies both origins' TLS (and the CRL signer)
  await writeFile(tmp.path('trust.pem'), (await readFile(est.caFile, 'utf8')) + (await readFile(crls.caFile, 'utf8')));
  await writeFile(tmp.path('up.pw'), 'estpwd\n');
  const bottom = await named('bottom', {
    labels: {
      default: {
        mode: 'forward',
        upstream: { url: est.url, trust: tmp.path('trust.pem'), username: 'estuser', password_file: tmp.path('up.pw'), crl_refresh: 1, crl_origin: new URL(crls.url).origin },
      },
    },
  });
  t.teardown(() => bottom.close());

  const [fromCrls] = await crlIndex(crls);
  const [fromEst] = await crlIndex(est);
  t.true(await eventually(async () => (await crlIndex(bottom)).some((e) => e.keyId === fromCrls!.keyId), 15_000));
  const served = await crlIndex(bottom);
  t.deepEqual(served.map((e) => e.name).sort(), ['bottom', 'crls']);
  t.false(served.some((e) => e.keyId === fromEst!.keyId));
  t.deepEqual(bottom.logs.filter((l) => /cannot fetch the CRLs/.test(String(l.msg))), []);
});

test('crl_origin must be an https origin: no path, no query, no credentials', (t) => {
  const config = (crl_origin: string) => ({
    labels: { default: { mode: 'forward', upstream: { url: 'https://parent:8085/.well-known/est', trust: 'root.pem', crl_origin } } },
  });
  for (const bad of ['http://top:8085', 'https://top:8085/crl/', 'https://top:8085?x=1', 'https://user:pw@top:8085', 'top:8085']) {
    t.throws(() => validateConfig(config(bad)), { message: /crl_origin/ }, bad);
  }
  t.notThrows(() => validateConfig(config('https://top-gw.plant:8085')));
  t.notThrows(() => validateConfig(config('https://[::1]:8085/')));
});
