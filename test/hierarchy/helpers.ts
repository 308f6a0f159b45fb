// A layered hierarchy on loopback for the hierarchy tests: the top issues (root
// + issuing sub-CA), two replicas of the middle forward to it as one RA sharing
// one Redis and no CA of their own, the bottom forwards to middle replica A and
// falls back to its own sub-CA (pathLen 0, signed by the top's issuing CA).
// Every layer's TLS chain ends in the hierarchy's root, so clients trust one file.
import { X509Certificate } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEstBase64, toPem } from '../../src/est/base64.js';
import { OID } from '../../src/est/oids.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import { type CaMaterial, createSubordinateCa } from '../../src/pki/ca.js';
import { leafCert } from '../helpers/client-certs.js';
import { run, scratchDir } from '../helpers/cli.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import { httpsRequest } from '../helpers/http.js';

export const MIDDLE_RA = 'middle-ra';
export const BOTTOM_RA = 'bottom-ra';

export interface HierarchyOptions {
  redis: { url: string; key_prefix: string };
  /** Extra keys of the middle's upstream table. */
  middleUpstream?: Record<string, unknown>;
  /** Extra keys of the bottom's upstream table. */
  bottomUpstream?: Record<string, unknown>;
  /** Extra keys of the top's and the bottom's default label (approval = "manual"). */
  topLabel?: Record<string, unknown>;
  bottomLabel?: Record<string, unknown>;
  /** Other top-level tables of the top's and the bottom's configuration ([approval]). */
  topExtra?: Record<string, unknown>;
  bottomExtra?: Record<string, unknown>;
  /** Replicas of the bottom layer (default 1), sharing this Redis when given. */
  bottomReplicas?: number;
  bottomRedis?: { url: string; key_prefix: string };
}

export interface Hierarchy {
  top: TestGateway;
  /** Replicas A and B of the middle layer; the bottom forwards to A. */
  middles: TestGateway[];
  bottom: TestGateway;
  /** Every replica of the bottom layer; bottom is the first. */
  bottoms: TestGateway[];
  /** The hierarchy's root, PEM, and a file holding it. */
  rootPem: string;
  rootFile: string;
  /** The bottom layer's own sub-CA (what it issues from while islanded). */
  bottomCa: CaMaterial;
  dir: string;
  stopMiddles(): Promise<void>;
  /** Starts both replicas again, on the same ports with the same files. */
  startMiddles(): Promise<void>;
  close(): Promise<void>;
}

const grantDevices = (identity: string) => [{ identity, common_names: ['*'], dns_names: ['*'] }];

/** A cmcRA + clientAuth certificate from `ca`, written with its chain (minus the root) beside its key. */
export async function raFiles(ca: CaMaterial, cn: string, dir: string): Promise<{ cert: string; key: string }> {
  const ra = await leafCert(ca, cn, { eku: [OID.cmcRA, OID.clientAuth] });
  const cert = join(dir, `${cn}.cert.pem`);
  const key = join(dir, `${cn}.key.pem`);
  await writeFile(cert, ra.certPem + ca.chain.slice(0, -1).map((d) => toPem('CERTIFICATE', d)).join(''));
  await writeFile(key, ra.keyPem, { mode: 0o600 });
  return { cert, key };
}

export async function startHierarchy(o: HierarchyOptions): Promise<Hierarchy> {
  const scratch = await scratchDir('estgw-hier-');
  const dir = scratch.dir;
  const started: TestGateway[] = [];
  try {
    const top = await startTestGateway({
      cas: {
        root: { create: 'root', subject: '/O=EST Test/CN=hierarchy root' },
        issuing: { create: 'subordinate', parent: 'root', subject: '/O=EST Test/CN=top issuing CA' },
      },
      labels: { default: { ca: 'issuing', auth: ['cert'], grants: grantDevices(`cert:ra/${MIDDLE_RA}`), ...o.topLabel } },
      ...(o.topExtra ? { extra: o.topExtra } : {}),
    });
    started.push(top);
    const issuing = top.gateway.pki.cas.get('issuing')!;
    const rootFile = top.caFile;
    const rootPem = top.caPem;

    const middleRa = await raFiles(issuing, MIDDLE_RA, dir);
    const bottomRa = await raFiles(issuing, BOTTOM_RA, dir);
    // the middle has no CA: its TLS server certificate comes from the top, as files
    const tls = await leafCert(issuing, 'localhost', {
      eku: [OID.serverAuth],
      san: [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }],
    });
    const tlsCert = join(dir, 'middle-tls.cert.pem');
    const tlsKey = join(dir, 'middle-tls.key.pem');
    await writeFile(tlsCert, tls.certPem + issuing.chain.map((d) => toPem('CERTIFICATE', d)).join(''));
    await writeFile(tlsKey, tls.keyPem, { mode: 0o600 });
    const bottomCa = await createSubordinateCa('bottom', join(dir, 'bottom-ca'), issuing, {
      subject: [['O', 'EST Test'], ['CN', 'bottom layer CA']],
      days: 30,
      pathLen: 0,
    });

    const ports = [0, 0];
    const middleDirs = ['middle-a', 'middle-b'].map((n) => join(dir, n));
    for (const d of middleDirs) await mkdir(d);
    const middles: TestGateway[] = [];
    const startMiddle = (i: number) =>
      startTestGateway({
        cas: {},
        dataDir: middleDirs[i]!,
        server: { listen: `127.0.0.1:${ports[i]}`, tls_cert: tlsCert, tls_key: tlsKey },
        redis: o.redis,
        labels: {
          default: {
            mode: 'forward',
            auth: ['cert'],
            upstream: { url: top.url, trust: rootFile, ...middleRa, timeout: 5, connect_timeout: 2, ...o.middleUpstream },
            grants: grantDevices(`cert:ra/${BOTTOM_RA}`),
          },
        },
      });
    // one after the other: B finds in Redis what A fetched while starting
    for (const i of [0, 1]) {
      const m = await startMiddle(i);
      ports[i] = m.port;
      middles.push(m);
      started.push(m);
    }

    const startBottom = () => startTestGateway({
      cas: { bottom: { create: 'none', dir: join(dir, 'bottom-ca') } },
      ...(o.bottomRedis ? { redis: o.bottomRedis } : {}),
      ...(o.bottomExtra ? { extra: o.bottomExtra } : {}),
      server: { tls_issuer: 'bottom' },
      labels: {
        default: {
          mode: 'forward',
          fallback: 'issue',
          ca: 'bottom',
          cert_days: 7,
          auth: ['basic', 'cert'],
          upstream: { url: middles[0]!.url, trust: rootFile, ...bottomRa, timeout: 3, connect_timeout: 1, ...o.bottomUpstream },
          grants: grantDevices('*'),
          ...o.bottomLabel,
        },
      },
    });
    const bottoms: TestGateway[] = [];
    for (let i = 0; i < (o.bottomReplicas ?? 1); i++) {
      bottoms.push(await startBottom());
      started.push(bottoms[i]!);
    }
    const bottom = bottoms[0]!;

    let middlesUp = true;
    return {
      top,
      middles,
      bottom,
      bottoms,
      rootPem,
      rootFile,
      bottomCa,
      dir,
      async stopMiddles() {
        middlesUp = false;
        await Promise.all(middles.map((m) => m.close()));
      },
      async startMiddles() {
        for (const i of [0, 1]) middles[i] = await startMiddle(i);
        middlesUp = true;
      },
      async close() {
        for (const b of bottoms) await b.close();
        if (middlesUp) await Promise.all(middles.map((m) => m.close()));
        await top.close();
        await scratch.remove();
      },
    };
  } catch (e) {
    for (const g of started.reverse()) await g.close().catch(() => undefined);
    await scratch.remove();
    throw e;
  }
}

/** The certificates of a /cacerts answer, as PEM. */
export async function caCertsPem(gw: TestGateway, trust: string): Promise<{ status: number; certs: X509Certificate[]; pem: string }> {
  const res = await httpsRequest(`${gw.url}/cacerts`, { ca: trust });
  if (res.status !== 200) return { status: res.status, certs: [], pem: '' };
  const certs = parseCertsOnly(decodeEstBase64(res.body)).map((d) => new X509Certificate(d));
  return { status: res.status, certs, pem: certs.map((c) => c.toString()).join('') };
}

/** `openssl verify -CAfile ROOT -untrusted CHAIN CERT`: the output, `CERT: OK` when it verifies. */
export async function opensslVerify(dir: string, rootFile: string, chainPem: string, certPem: string): Promise<string> {
  const tag = Math.random().toString(36).slice(2);
  const chain = join(dir, `chain-${tag}.pem`);
  const cert = join(dir, `cert-${tag}.pem`);
  await writeFile(chain, chainPem);
  await writeFile(cert, certPem);
  const r = await run('openssl', ['verify', '-CAfile', rootFile, '-untrusted', chain, cert]);
  await Promise.all([rm(chain, { force: true }), rm(cert, { force: true })]);
  return `${r.stdout.toString('utf8')}${r.stderr}`.trim();
}
