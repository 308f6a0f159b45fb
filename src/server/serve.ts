// `estgw serve`: prepare the PKI once, then serve from one process or from a
// node:cluster of workers sharing the port (both cores on the hot path).
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type Config, labelValidityText } from '../config/schema.js';
import { validateConfig } from '../config/load.js';
import { fromPemAll } from '../est/base64.js';
import { CA_CERT_FILE, sha256Fingerprint } from '../pki/ca.js';
import { replaceSubordinateCa, requestSubordinateCa } from '../issuer/subca-request.js';
import { caDir, preparePki } from './pki-setup.js';
import { type Logger, createLogger, flushLogs } from '../util/log.js';
import { type RunningGateway, splitHostPort, startGateway } from './gateway.js';
import { RestartBackoff } from './restart-backoff.js';
import { SubCaRenewer } from './subca-renewal.js';
import { AggregatorRegistry, Registry } from 'prom-client';
import { type MetricsSource, serveMetrics } from '../util/metrics-server.js';

const WORKER_CONFIG_ENV = 'ESTGW_WORKER_CONFIG';
/** Primary to workers: a sub-CA was renewed on disk; issue from it. */
const RELOAD_PKI = 'estgw:reload-pki';

export interface ServeOptions {
  /** The embedded default runs with the tutorial's well-known credentials. */
  devCredentials?: boolean;
  /** Banner destination; the CLI prints to stderr so stdout stays machine-readable logs. */
  print?: (line: string) => void;
}

export const workerCount = (cfg: Config): number => (cfg.server.workers === 'auto' ? availableParallelism() : cfg.server.workers);

/** SIGTERM: unready at once, the listener open for shutdown_delay more, then shutdown_grace for requests in flight. */
const drainTimes = (cfg: Config) => ({ delayMs: cfg.server.shutdown_delay * 1000, graceMs: cfg.server.shutdown_grace * 1000 });

export async function serve(cfg: Config, opts: ServeOptions = {}): Promise<void> {
  const logger = createLogger(cfg.log.level);
  const print = opts.print ?? ((l: string) => process.stderr.write(`${l}\n`));
  const pki = await preparePki(cfg, { create: true, requestCa: (name, dir) => requestSubordinateCa(name, dir, cfg.cas[name]!, logger) });
  const n = workerCount(cfg);

  // bound first, so a taken metrics port fails the start before anything else runs
  let metricsSource: MetricsSource | undefined;
  const metricsServer = cfg.server.metrics_listen
    ? await serveMetrics(cfg.server.metrics_listen, {
        contentType: Registry.PROMETHEUS_CONTENT_TYPE,
        metrics: () => metricsSource?.metrics() ?? Promise.reject(new Error('the gateway is still starting')),
      })
    : undefined;

  let stop: () => Promise<void>;
  let port: number;
  let reload: () => Promise<void>;
  const releaseMetricsOnFailure = (e: unknown): never => {
    metricsServer?.close();
    throw e;
  };
  if (n <= 1) {
    const gw = await startGateway(cfg, { logger, pki }).catch(releaseMetricsOnFailure);
    metricsSource = gw.metrics.registry;
    port = gw.port;
    stop = () => gw.drain(drainTimes(cfg));
    reload = async () => gw.reload(await preparePki(cfg, { create: false }));
  } else {
    ({ port, stop } = await startCluster(cfg, n, logger).catch(releaseMetricsOnFailure));
    const aggregator = new AggregatorRegistry();
    metricsSource = { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() };
    reload = async () => {
      // once here, so a TLS certificate the new PKI needs is made once, not by every worker at the same time
      await preparePki(cfg, { create: false });
      for (const w of Object.values(cluster.workers ?? {})) w?.send(RELOAD_PKI);
    };
  }
  const renewer = new SubCaRenewer({
    cfg,
    logger,
    replace: (name, dir) => replaceSubordinateCa(name, dir, cfg.cas[name]!, logger),
    onRenewed: () => reload(),
  });
  renewer.start(pki.cas);
  const stopAll = stop;
  stop = async () => {
    renewer.stop();
    await stopAll();
    metricsServer?.close(); // scraped until the end of the drain
  };

  // a forwarding layer may have no CA of its own: then its TLS chain names the root
  const rootDer = pki.cas.get(cfg.server.tls_issuer)?.chain.at(-1) ?? fromPemAll(pki.tls.certChainPem, 'CERTIFICATE').at(-1)!;
  const fp = sha256Fingerprint(rootDer);
  const { host } = splitHostPort(cfg.server.listen);
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}/.well-known/est`;
  for (const name of pki.created) print(`created CA "${name}" in ${caDir(cfg, name)}`);
  print(`est-gateway: EST URL ${url}`);
  for (const [name, l] of Object.entries(cfg.labels)) {
    const local = `CA "${l.ca}" ${join(caDir(cfg, l.ca), CA_CERT_FILE)}, certificates valid ${labelValidityText(l)}`;
    const what = l.mode === 'forward' ? `forwards to ${l.upstream!.url}${l.upstream!.label ? ` (label ${l.upstream!.label})` : ''}${l.fallback === 'issue' ? `; islanded: ${local}` : ''}` : local;
    print(`  ${name === 'default' ? '(no label)' : `label ${name}`}: ${what}`);
  }
  print(`  root CA SHA-256 fingerprint: ${fp}`);
  print(`  workers: ${n}, CA-chain cache: ${cfg.redis.url ? 'redis' : 'in-process'}`);
  if (cfg.server.metrics_listen) print(`  metrics: http://${cfg.server.metrics_listen}/metrics`);
  if (pki.cas.size) {
    print(`  issuance ledger: ${join(cfg.server.data_dir, 'ledger')} (estgw certs list|show|export|revoke)`);
    const base = cfg.server.crl_listen ? `http://${cfg.server.crl_listen}` : url.replace(/\/\.well-known\/est$/, '');
    print(`  CRLs: ${[...pki.cas.keys()].map((n) => `${base}/crl/${n}.crl`).join(', ')}`);
    print(`  OCSP: ${base}/ocsp`);
  }
  if (opts.devCredentials) {
    print('');
    print('  WARNING: development defaults: HTTP Basic user "estuser" with password "estpwd" is enabled,');
    print('  WARNING: exactly as in the libest test server. Use `estgw serve --config FILE` with hashed');
    print('  WARNING: passwords (`estgw passwd`) and client certificates for anything but a test bench.');
  }
  logger.info({ url, workers: n, rootFingerprint: fp }, 'listening');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const exit = (code: number) => {
      flushLogs(logger);
      process.exit(code);
    };
    stop().then(() => exit(0), () => exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // after `estgw ca request-subca --force` (or restoring a backup): issue from what is on disk now
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the CAs from disk');
    reload().catch((err: unknown) => logger.error({ err }, 'reloading the CAs failed; still issuing from the previous ones'));
  });
}

async function startCluster(cfg: Config, n: number, logger: Logger): Promise<{ port: number; stop: () => Promise<void> }> {
  let stopping = false;
  const env = { [WORKER_CONFIG_ENV]: JSON.stringify(cfg) };
  // Every worker accepts from the shared socket itself. Under round-robin the
  // primary accepts and passes each connection over IPC, and one passed to a
  // worker killed before taking it is never closed. Set before the first fork,
  // so NODE_CLUSTER_SCHED_POLICY=rr in the environment cannot bring that back.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const servingSince = new Map<number, number>();
  const fork = () => {
    const w = cluster.fork(env);
    w.once('listening', () => {
      servingSince.set(w.id, Date.now());
      logger.info({ worker: w.process.pid }, 'worker listening');
    });
    return w;
  };
  // with port 0 cluster hands every worker the same port, so any worker's address will do
  const ports = await Promise.all(
    Array.from({ length: n }, fork).map(
      (w) =>
        new Promise<number>((resolve, reject) => {
          w.once('listening', (addr) => resolve(addr.port));
          w.once('exit', (code) => reject(new Error(`worker exited with code ${code} before listening`)));
        }),
    ),
  );
  const port = ports[0]!;
  const backoff = new RestartBackoff();
  const pending = new Set<NodeJS.Timeout>();
  cluster.on('exit', (w, code, signal) => {
    const since = servingSince.get(w.id);
    servingSince.delete(w.id);
    if (stopping) return;
    const restartInMs = backoff.afterExit(since);
    logger.error({ worker: w.process.pid, code, signal, restartInMs }, 'worker died; starting a new one');
    // not unref()ed: with every worker gone this timer is what keeps the primary alive
    const timer = setTimeout(() => {
      pending.delete(timer);
      fork();
    }, restartInMs);
    pending.add(timer);
  });
  return {
    port,
    stop: async () => {
      stopping = true;
      for (const timer of pending) clearTimeout(timer);
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
      const { delayMs, graceMs } = drainTimes(cfg);
      await Promise.all(
        alive.map(
          (w) =>
            new Promise<void>((resolve) => {
              w!.once('exit', () => resolve());
              w!.process.kill('SIGTERM');
              // a worker that drains has closed everything by delay + grace
              setTimeout(() => w!.process.kill('SIGKILL'), delayMs + graceMs + 5000).unref();
            }),
        ),
      );
    },
  };
}

/** A cluster worker: configuration from the primary, PKI loaded (never created) from disk. */
export async function serveWorker(): Promise<void> {
  const cfg = validateConfig(JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '{}'));
  const logger = createLogger(cfg.log.level);
  let gw: RunningGateway | undefined;
  try {
    gw = await startGateway(cfg, { logger, pki: await preparePki(cfg, { create: false }) });
    // answer the primary's /metrics requests (prom-client installs that listener in the constructor) with this registry
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([gw.metrics.registry]);
  } catch (e) {
    logger.fatal({ err: e }, 'worker failed to start');
    flushLogs(logger);
    process.exit(1);
  }
  const exit = (code: number) => {
    flushLogs(logger);
    process.exit(code);
  };
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    gw!.drain(drainTimes(cfg)).then(() => exit(0), () => exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => {}); // the primary decides; Ctrl-C reaches the whole group
  process.on('SIGHUP', () => {}); // a hangup of the terminal too; reloads come from the primary
  process.on('message', (m) => {
    if (m !== RELOAD_PKI) return;
    preparePki(cfg, { create: false })
      .then((next) => gw!.reload(next))
      .catch((err: unknown) => logger.error({ err }, 'reloading the PKI failed; still issuing from the previous one'));
  });
}
