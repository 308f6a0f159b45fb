// A real gateway on 127.0.0.1:0 with its own data directory, for tests.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { fromPemAll, toPem } from '../../src/est/base64.js';
import { type RunningGateway, startGateway } from '../../src/server/gateway.js';
import type { CrlIndexEntry } from '../../src/est/crl-index.js';
import { httpsRequest } from './http.js';

export interface TestGatewayOptions {
  /** Label tables as in the config file ([labels.NAME]); default: one `default` label. */
  labels?: Record<string, Record<string, unknown>>;
  /** CA tables ([cas.NAME]); default: one root. */
  cas?: Record<string, Record<string, unknown>>;
  /** Extra [server] keys. */
  server?: Record<string, unknown>;
  /** Plain passwords by user, hashed here; default estuser/estpwd. */
  users?: Record<string, string>;
  /** Trust anchors (PEM files) for client certificates on every label. */
  clientTrust?: string[];
  redis?: Record<string, unknown>;
  /** Reuse a data directory (restart tests). */
  dataDir?: string;
  /** Other top-level configuration tables (e.g. proxy). */
  extra?: Record<string, unknown>;
  /** The clock the gateway's time-based decisions use (CRL staleness, rate bounds): tests freeze or move it. */
  now?: () => number;
}

export interface TestGateway {
  gateway: RunningGateway;
  config: Config;
  url: string;
  port: number;
  /** PEM of the root that issued the TLS certificate (what a client trusts). */
  caPem: string;
  caFile: string;
  dataDir: string;
  /** Every structured log line the gateway wrote (audit lines have msg "est"). */
  logs: Array<Record<string, unknown>>;
  audit(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

const hashes = new Map<string, Promise<string>>();
const hashOnce = (pw: string) => {
  let h = hashes.get(pw);
  if (!h) hashes.set(pw, (h = hashPassword(pw)));
  return h;
};

export async function startTestGateway(o: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), 'estgw-test-')));
  const users: Record<string, { password_hash: string }> = {};
  for (const [u, pw] of Object.entries(o.users ?? { estuser: 'estpwd' })) users[u] = { password_hash: await hashOnce(pw) };
  const labels = Object.fromEntries(
    Object.entries(o.labels ?? { default: {} }).map(([k, v]) => [k, { ...(o.clientTrust ? { client_trust: o.clientTrust } : {}), ...v }]),
  );
  const config = validateConfig({
    server: { listen: '127.0.0.1:0', data_dir: dataDir, workers: 1, ...o.server },
    log: { level: 'debug' },
    cas: o.cas ?? { root: {} },
    users,
    labels,
    ...(o.redis ? { redis: o.redis } : {}),
    ...o.extra,
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const gateway = await startGateway(config, { logger, ...(o.now ? { now: o.now } : {}) });
  // a gateway without a local CA (tls_cert from files) is trusted through the last certificate of its TLS chain
  const tlsIssuer = gateway.pki.cas.get(config.server.tls_issuer);
  const caPem = toPem('CERTIFICATE', tlsIssuer ? tlsIssuer.chain.at(-1)! : fromPemAll(gateway.pki.tls.certChainPem, 'CERTIFICATE').at(-1)!);
  const caFile = join(dataDir, 'test-trust.pem');
  await writeFile(caFile, caPem);
  return {
    gateway,
    config,
    url: gateway.url,
    port: gateway.port,
    caPem,
    caFile,
    dataDir,
    logs,
    audit: () => logs.filter((l) => l.msg === 'est'),
    async close() {
      await gateway.close();
      if (!o.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type { CrlIndexEntry } from '../../src/est/crl-index.js';

/** GET /crl/ at a test gateway, over its TLS. */
export async function crlIndex(gw: TestGateway): Promise<CrlIndexEntry[]> {
  const res = await httpsRequest(`${new URL(gw.url).origin}/crl/`, { ca: gw.caPem });
  if (res.status !== 200) throw new Error(`GET /crl/: ${res.status} ${res.body}`);
  return (JSON.parse(res.body.toString()) as { crls: CrlIndexEntry[] }).crls;
}
