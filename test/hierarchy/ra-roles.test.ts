// RFC 7030 §3.7 with RAs that are not est-gateway: an RA is a configured role
// (registration_authorities), not only an EKU. A foreign, EKU-less RA
// certificate relays renewals with Client-Cert (est-gateway below) or without
// it (libest's estproxy: an enrollment the RA vouches for, within its grants),
// and a layer whose parent refuses Client-Cert says so, or vouches upward.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OID } from '../../src/est/oids.js';
import { encodeClientCertHeader } from '../../src/issuer/forward-issuer.js';
import { type ClientCert, leafCert } from '../helpers/client-certs.js';
import { scratchDir } from '../helpers/cli.js';
import { assertReason, enroll, issuedCert } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { basic } from '../helpers/http.js';
import { makeCsr } from '../helpers/pki.js';

let top: TestGateway;
let middle: TestGateway;
let bottomRa: ClientCert;
let device: { cert: string; key: string };
let scratch: Awaited<ReturnType<typeof scratchDir>>;

const devices = (identity: string | string[]) => [{ identity, common_names: ['dev-*'] }];

test.before(async () => {
  scratch = await scratchDir('estgw-ra-roles-');
  top = await startTestGateway({
    labels: {
      // middle-ra's certificate has no cmcRA: declared an RA here by name
      default: { registration_authorities: ['cert:middle-ra'], grants: devices('cert:ra/middle-ra') },
      // a parent that does not take Client-Cert from it (as a non-gateway parent would not)
      strict: { grants: devices('cert:device/middle-ra') },
    },
  });
  const root = top.gateway.pki.cas.get('root')!;
  // RA certificates as libest's example CA issues them: clientAuth at most, no id-kp-cmcRA
  const middleRa = await leafCert(root, 'middle-ra', { eku: [OID.clientAuth] });
  bottomRa = await leafCert(root, 'bottom-ra', { eku: [OID.clientAuth] });
  const raCert = join(scratch.dir, 'middle-ra.cert.pem');
  const raKey = join(scratch.dir, 'middle-ra.key.pem');
  await writeFile(raCert, middleRa.certPem);
  await writeFile(raKey, middleRa.keyPem, { mode: 0o600 });
  const up = (label: string | undefined, reenroll: string) => ({ url: top.url, ...(label ? { label } : {}), trust: top.caFile, cert: raCert, key: raKey, reenroll, timeout: 5 });
  const relayed = { registration_authorities: ['cert:bottom-ra', 'user:relay'], auth: ['cert', 'basic'] };
  middle = await startTestGateway({
    cas: { tls: {} },
    server: { tls_issuer: 'tls' },
    users: { relay: 'relay-pw', estuser: 'estpwd' },
    labels: {
      default: { mode: 'forward', upstream: up(undefined, 'client-cert'), ...relayed, grants: devices(['cert:ra/bottom-ra', 'user:relay']) },
      plain: { mode: 'forward', upstream: up('strict', 'client-cert'), ...relayed, grants: devices('cert:ra/bottom-ra') },
      auto: { mode: 'forward', upstream: up('strict', 'auto'), ...relayed, grants: devices('cert:ra/bottom-ra') },
      nodecl: { mode: 'forward', upstream: up(undefined, 'client-cert'), grants: devices('cert:bottom-ra') },
      devices: { mode: 'forward', upstream: up(undefined, 'client-cert'), grants: [{ identity: '*', common_names: ['*'] }] },
    },
  });
  const csr = await makeCsr('dev-1');
  const cert = issuedCert({ is: () => undefined } as never, await enroll(middle, csr.b64, { auth: null, cert: bottomRa.certPem, key: bottomRa.keyPem }));
  device = { cert: cert.toString(), key: csr.keyPem };
});
test.after.always(async () => {
  await middle?.close();
  await top?.close();
  await scratch?.remove();
});

const ra = () => ({ auth: null, cert: bottomRa.certPem, key: bottomRa.keyPem });
const clientCert = () => ({ 'Client-Cert': encodeClientCertHeader(Buffer.from(device.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64')) });
const renewal = async (label: string | undefined, o: { headers?: Record<string, string>; cn?: string } = {}) =>
  enroll(middle, (await makeCsr(o.cn ?? 'dev-1')).b64, { op: 'simplereenroll', ...ra(), ...(label ? { label } : {}), ...(o.headers ? { headers: o.headers } : {}) });

test('an RA with a foreign, EKU-less certificate, declared by name, relays a renewal with Client-Cert', async (t) => {
  const renewed = issuedCert(t, await renewal(undefined, { headers: clientCert() }));
  t.regex(renewed.subject, /CN=dev-1/);
  // the tests of this file run at once: find this renewal's own line by its serial
  // compared without leading zeros on both sides: a serial whose first nibble is 0 is printed either way
  const bare = (hex: string) => hex.toUpperCase().replace(/^0+/, '');
  const line = middle.audit().find((l) => bare(String(l.serial ?? '')) === bare(renewed.serialNumber));
  t.is(line?.identity, 'cert:ra/bottom-ra');
  t.true(line?.reenroll === 'renew' || line?.reenroll === 'rekey');
});

test('the same RA without Client-Cert (libest estproxy): a renewal it vouches for, within its grants', async (t) => {
  issuedCert(t, await renewal(undefined));
  t.is(middle.audit().filter((l) => l.reenroll === 'vouched' && l.status === 200).at(-1)?.identity, 'cert:ra/bottom-ra');
  // the top saw an ordinary enrollment by the middle's RA
  t.true(top.audit().some((l) => l.op === 'simpleenroll' && l.subject === 'CN=dev-1' && l.identity === 'cert:ra/middle-ra'));
});

test('a non-gateway RA renewing outside its grants is refused (403), with or without Client-Cert', async (t) => {
  assertReason(t, await renewal(undefined, { cn: 'other-1' }), 403, /may not request/);
  assertReason(t, await renewal(undefined, { cn: 'other-1', headers: clientCert() }), 403, /subject/);
});

test('a Basic user declared an RA relays with Client-Cert; an undeclared certificate without cmcRA may not', async (t) => {
  const viaUser = await enroll(middle, (await makeCsr('dev-1')).b64, { op: 'simplereenroll', auth: basic('relay', 'relay-pw'), headers: clientCert() });
  issuedCert(t, viaUser);
  assertReason(t, await renewal('nodecl', { headers: clientCert() }), 403, /only from a registration authority/);
  // and a device with the bootstrap password is no RA
  const dev = await enroll(middle, (await makeCsr('dev-1')).b64, { op: 'simplereenroll', auth: basic('estuser', 'estpwd'), headers: clientCert() });
  assertReason(t, dev, 403, /only from a registration authority/);
});

test('a parent refusing Client-Cert: the error says so and names the setting; with reenroll = "auto" the RA vouches with simpleenroll', async (t) => {
  assertReason(t, await renewal('plain', { headers: clientCert() }), 403, /Client-Cert.*reenroll = "auto"/);
  issuedCert(t, await renewal('auto', { headers: clientCert() }));
  t.true(middle.logs.some((l) => /refused a renewal relayed with Client-Cert/.test(String(l.msg))));
  t.true(top.audit().some((l) => l.label === 'strict' && l.op === 'simpleenroll' && l.status === 200));
});

test('names of declared RAs are reserved on the layer\'s device labels', async (t) => {
  assertReason(t, await enroll(middle, (await makeCsr('bottom-ra')).b64, { label: 'devices' }), 403, /reserved/);
});

test('a device (no RA) renewing without Client-Cert keeps its own subject: vouching is for RAs only', async (t) => {
  assertReason(t, await enroll(middle, (await makeCsr('dev-2')).b64, { op: 'simplereenroll', auth: null, cert: device.cert, key: device.key }), 403, /keep the subject/);
});
