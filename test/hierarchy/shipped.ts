// The shipped hierarchy (config/hierarchy/*.toml, unchanged but for ports and
// Redis prefix) started in-process on loopback port 0, bootstrapped the way its
// README says: the middle's RA certificate with its Basic password, the
// bottom's RA certificate through the middle, the bottom's sub-CA through both.
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtemp } from 'node:fs/promises';
import { pino } from 'pino';
import { loadConfigFile } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { toPem } from '../../src/est/base64.js';
import { requestSubordinateCa } from '../../src/issuer/subca-request.js';
import { preparePki } from '../../src/server/pki-setup.js';
import { type GatewayOptions, type RunningGateway, startGateway } from '../../src/server/gateway.js';
import { makeCsr } from '../helpers/pki.js';
import { basic, httpsRequest } from '../helpers/http.js';
import { certsOf } from '../helpers/est.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const silent = pino({ level: process.env.ESTGW_TEST_LOG ?? 'silent' });

export interface Layer {
  gw: RunningGateway;
  cfg: Config;
  url: string;
  /** PEM a client of this layer trusts for its TLS certificate. */
  trust: string;
}

export interface ShippedHierarchy {
  ws: string;
  top: Layer;
  middle: Layer;
  bottom: Layer;
  /** The plant root (PEM). */
  rootPem: string;
  /** The bottom's RA certificate and key as issued through the bootstrap. */
  bottomRa: { certPem: string; keyPem: string };
  middleRa: { certPem: string; keyPem: string };
  /** Passwords from config/hierarchy/secrets. */
  secret(name: string): Promise<string>;
  /** Stops the middle layer; startMiddle() brings it back on the same port with the same files. */
  stopMiddle(): Promise<void>;
  startMiddle(): Promise<void>;
  close(): Promise<void>;
}

type LayerName = 'top' | 'middle' | 'bottom';
export interface ShippedOptions {
  /** Extra `key=value` settings per layer, after the shipped file's and the test ports. */
  settings?: Partial<Record<LayerName, string[]>>;
  /** Gateway options per layer (a logger that keeps lines, a clock). */
  gateway?: Partial<Record<LayerName, GatewayOptions>>;
}

/** POSTs a CSR to LAYER[/label]/op; auth is a full Authorization value. */
export function post(layer: Layer, b64: string, o: { label?: string; op?: string; auth?: string; cert?: string; key?: string; headers?: Record<string, string> } = {}) {
  const path = `${layer.url}/${o.label ? `${o.label}/` : ''}${o.op ?? 'simpleenroll'}`;
  return httpsRequest(path, {
    ca: layer.trust,
    body: b64,
    headers: { 'Content-Type': 'application/pkcs10', ...(o.auth ? { Authorization: o.auth } : {}), ...o.headers },
    ...(o.cert ? { cert: o.cert, key: o.key! } : {}),
  });
}

export async function startShippedHierarchy(redisPrefix: string, o: ShippedOptions = {}): Promise<ShippedHierarchy> {
  const extra = (l: LayerName) => o.settings?.[l] ?? [];
  const gwOpts = (l: LayerName): GatewayOptions => ({ logger: silent, ...o.gateway?.[l] });
  const ws = await mkdtemp(join(tmpdir(), 'estgw-shipped-'));
  const C = (f: string) => join(ws, 'config', 'hierarchy', f);
  const D = (f: string) => join(ws, 'data', 'hierarchy', f);
  await cp(join(REPO, 'config', 'hierarchy'), join(ws, 'config', 'hierarchy'), { recursive: true });
  for (const d of ['top', 'middle', 'bottom', 'device']) await mkdir(D(d), { recursive: true });
  const secret = async (n: string) => (await readFile(C(`secrets/${n}.txt`), 'utf8')).trim();
  const started: RunningGateway[] = [];
  // the middle shares CA chains through Redis, as shipped; the others keep them in memory
  const redis = [`redis.url="redis://127.0.0.1:6379"`, `redis.key_prefix="${redisPrefix}"`];
  try {
    const topCfg = await loadConfigFile(C('top.toml'), ['server.listen="127.0.0.1:0"', ...extra('top')]);
    const topGw = await startGateway(topCfg, gwOpts('top'));
    started.push(topGw);
    const rootPem = toPem('CERTIFICATE', topGw.pki.cas.get('root')!.certDer);
    await writeFile(D('top-root.pem'), rootPem);
    const top: Layer = { gw: topGw, cfg: topCfg, url: topGw.url, trust: rootPem };

    const enrollRa = async (layer: Layer, cn: string, user: string) => {
      const csr = await makeCsr(cn);
      const res = await post(layer, csr.b64, { label: 'ra', auth: basic(user, await secret(user)) });
      if (res.status !== 200) throw new Error(`RA ${cn}: ${res.status} ${res.body}`);
      return { certPem: certsOf(res.body)[0]!.toString(), keyPem: csr.keyPem };
    };
    const middleRa = await enrollRa(top, 'middle-ra', 'middle-ra');
    await writeFile(D('middle/ra.cert.pem'), middleRa.certPem);
    await writeFile(D('middle/ra.key.pem'), middleRa.keyPem, { mode: 0o600 });

    const up = (labels: string[], url: string) => labels.map((l) => `labels.${l}.upstream.url="${url}"`);
    const middleCfg = await loadConfigFile(C('middle.toml'), ['server.listen="127.0.0.1:0"', ...redis, ...up(['default', 'ra', 'subca'], top.url), ...extra('middle')]);
    const middleGw = await startGateway(middleCfg, gwOpts('middle'));
    started.push(middleGw);
    const middleTls = toPem('CERTIFICATE', middleGw.pki.cas.get('tls')!.certDer);
    await writeFile(D('middle-tls.pem'), middleTls);
    const middle: Layer = { gw: middleGw, cfg: middleCfg, url: middleGw.url, trust: middleTls };

    const bottomRa = await enrollRa(middle, 'bottom-ra', 'bottom-ra');
    await writeFile(D('bottom/ra.cert.pem'), bottomRa.certPem);
    await writeFile(D('bottom/ra.key.pem'), bottomRa.keyPem, { mode: 0o600 });

    const bottomCfg = await loadConfigFile(C('bottom.toml'), ['server.listen="127.0.0.1:0"', ...up(['default'], middle.url), `cas.bottom.request.url="${middle.url}"`, ...extra('bottom')]);
    const pki = await preparePki(bottomCfg, { create: true, requestCa: (name, dir) => requestSubordinateCa(name, dir, bottomCfg.cas[name]!) });
    const bottomGw = await startGateway(bottomCfg, { ...gwOpts('bottom'), pki });
    started.push(bottomGw);
    const bottom: Layer = { gw: bottomGw, cfg: bottomCfg, url: bottomGw.url, trust: rootPem };

    const middlePort = middleGw.port;
    let middleUp = true;
    return {
      ws, top, middle, bottom, rootPem, bottomRa, middleRa, secret,
      async stopMiddle() {
        middleUp = false;
        await middle.gw.close();
      },
      async startMiddle() {
        middle.gw = await startGateway({ ...middleCfg, server: { ...middleCfg.server, listen: `127.0.0.1:${middlePort}` } }, gwOpts('middle'));
        middleUp = true;
      },
      async close() {
        await bottomGw.close();
        if (middleUp) await middle.gw.close();
        await topGw.close();
        await rm(ws, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const g of started.reverse()) await g.close().catch(() => undefined);
    await rm(ws, { recursive: true, force: true });
    throw e;
  }
}
