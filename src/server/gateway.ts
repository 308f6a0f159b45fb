// One gateway process: labels wired to issuers, the Koa app on an HTTPS server.
import { createHash } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { PasswordVerifier } from '../auth/password.js';
import { CaChainService, createCaChainCache } from '../cache/index.js';
import type { Config, LabelConfig } from '../config/schema.js';
import type { CaMaterial } from '../pki/ca.js';
import { fromPemAll, toPem } from '../est/base64.js';
import { FallbackIssuer } from '../issuer/fallback-issuer.js';
import { ForwardIssuer } from '../issuer/forward-issuer.js';
import type { Issuer } from '../issuer/issuer.js';
import { LocalIssuer } from '../issuer/local-issuer.js';
import { upstreamClient, upstreamClientOptions } from '../issuer/upstream-options.js';
import type { KeySpec } from '../pki/keys.js';
import { Ledger, type LedgerCa, ledgerCas } from '../ledger/ledger.js';
import { ApprovalQueue, openApprovalStore, usesManualApproval } from '../approval/queue.js';
import { serveCrls } from './crl.js';
import { linksOfPeer } from './middleware/check-not-revoked.js';
import { RevocationAuthority } from './revocation.js';
import { OcspResponder } from './ocsp.js';
import { OcspRelay } from './ocsp-relay.js';
import { ServedCrls } from './served-crls.js';
import { UpstreamCrls } from './upstream-crls.js';
import { type Pki, preparePki, recordSetupCertificates } from './pki-setup.js';
import { parseDurationMs } from '../util/durations.js';
import { type Logger, createLogger } from '../util/log.js';
import { createApp } from './app.js';
import { guardConnections } from './connection-guard.js';
import { GatewayMetrics } from './metrics.js';
import { type ParentEndpoint, Readiness } from './readiness.js';
import { createUpstreamProxy } from './upstream-proxy.js';
import { type Label, makeLabel } from './label.js';
import { layerProfiles } from '../policy/policy.js';
import type { Services } from './services.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Already prepared PKI (the cluster primary prepares it once). */
  pki?: Pki;
  metrics?: GatewayMetrics;
  /** The clock revocation judges CRL staleness by (tests move it); default Date.now. */
  now?: () => number;
}

/** How often CRLs are checked for re-signing: often enough to catch half of the shortest validity. */
const crlCheckMs = (cas: Map<string, LedgerCa>) => Math.max(1000, Math.min(600_000, ...[...cas.values()].map((c) => c.crlValidityMs / 8)));

export interface RunningGateway {
  server: Server;
  host: string;
  port: number;
  /** https://HOST:PORT/.well-known/est */
  url: string;
  pki: Pki;
  /** Issues from a new PKI (a renewed sub-CA) without dropping a connection. */
  reload(next: Pki): Promise<void>;
  labels: Map<string, Label>;
  metrics: GatewayMetrics;
  /**
   * Graceful stop (SIGTERM): /readyz answers 503 and every answer says
   * `Connection: close` at once, the listener closes after `delayMs`, requests
   * in flight then have `graceMs` to finish before their connections are closed.
   */
  drain(o: { delayMs: number; graceMs: number }): Promise<void>;
  /** drain() without the delay and with a 2 s grace. */
  /** At a layer with local CAs: every certificate they signed, and revocations. */
  ledger?: Ledger;
  /** Port of the plain-HTTP CRL listener (crl_listen). */
  crlPort?: number;
  close(): Promise<void>;
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** Chains of local CAs never change while running; forwarded ones (later) expire and refresh. */
const LOCAL_CHAIN_REFRESH_MS = 3600_000;

export async function startGateway(cfg: Config, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const logger = opts.logger ?? createLogger(cfg.log.level);
  const pki = opts.pki ?? (await preparePki(cfg, { create: true }));
  const metrics = opts.metrics ?? new GatewayMetrics();
  // a layer that signs keeps its ledger beside the CA keys
  const ledger = pki.cas.size ? Ledger.open(cfg.server.data_dir, ledgerCas(cfg, pki.cas), { sync: cfg.server.ledger_sync, onRecorded: (ca) => metrics.recordedCertificate(ca) }) : undefined;
  if (ledger) {
    metrics.watchLedger(ledger);
    // before the TLS certificate is presented or a sub-CA served: on record like everything the CAs sign
    await recordSetupCertificates(ledger, pki);
    ledger.refreshCrls();
  }

  const labels = new Map<string, Label>();
  const layer = layerProfiles(cfg.labels);
  const forwarders = new Map<string, ForwardIssuer>();
  /** (Re)builds every label from the PKI; forwarders survive a reload, local CAs are taken afresh. */
  const buildLabels = async (p: Pki) => {
    for (const [name, lc] of Object.entries(cfg.labels)) {
      const ca = lc.mode === 'issue' || lc.fallback === 'issue' ? p.cas.get(lc.ca)! : undefined;
      const crlUrl = ca ? cfg.cas[lc.ca]?.crl_url : undefined;
      const ocspUrl = ca ? cfg.cas[lc.ca]?.ocsp_url : undefined;
      const local = ca
        ? new LocalIssuer(ca, lc.serverkeygen_key as KeySpec, {
          ...(ledger ? { ledger } : {}), ...(crlUrl ? { crlUrl } : {}), ...(ocspUrl ? { ocspUrl } : {}), assertUsable: (c) => revocation.assertCaUsable(c),
        })
        : undefined;
      let issuer: Issuer = local!;
      // a replaced sub-CA keeps validating (and renewing) what it issued until it expires
      const previous = ca?.previous ?? [];
      const own = [...(ca?.chain ?? []), ...previous];
      if (lc.mode === 'forward') {
        const up = lc.upstream!;
        let forward = forwarders.get(name);
        if (!forward) forwarders.set(name, (forward = new ForwardIssuer(await upstreamClientOptions(up, { keepAlive: true, logger }), { reenroll: up.reenroll, logger })));
        issuer = lc.fallback === 'issue'
          ? new FallbackIssuer(forward, local!, (op, reason) => logger.warn({ label: name, op, reason }, 'parent unreachable: issuing locally (islanded)'))
          : forward;
      }
      const anchors = uniqueDer([...own, ...(await readPemFiles(lc.client_trust))]);
      labels.set(name, makeLabel(name, lc, layer, issuer, anchors, ca ? [ca.certDer, ...previous] : [], uniqueDer(own)));
    }
  };
  await buildLabels(pki);

  const redisUrl = cfg.redis.url;
  const cache = createCaChainCache({ keyPrefix: cfg.redis.key_prefix, logger, ...(redisUrl ? { redisUrl } : {}) });
  const chainServices: CaChainService[] = [];
  const serviceFor = new Map<string, { svc: CaChainService; key: string }>();
  for (const label of labels.values()) {
    const up = label.cfg.mode === 'forward' ? label.cfg.upstream! : undefined;
    const opts = up
      ? { refreshAfterMs: up.cacerts_refresh * 1000, maxStaleMs: up.cacerts_max_stale * 1000, lockTtlMs: (up.connect_timeout + up.timeout) * 1000 }
      : { refreshAfterMs: LOCAL_CHAIN_REFRESH_MS, maxStaleMs: 24 * LOCAL_CHAIN_REFRESH_MS };
    const svc = new CaChainService(cache, { ...opts, logger });
    const key = chainCacheKey(label.name, label.cfg, pki.cas.get(label.cfg.ca));
    svc.register(key, () => labels.get(label.name)!.issuer.caCerts(), label.name);
    chainServices.push(svc);
    serviceFor.set(label.name, { svc, key });
  }
  // the parent's CRLs, per distinct parent, in their own Redis namespace
  const crlCache = createCaChainCache({ keyPrefix: cfg.redis.key_prefix, namespace: 'crls', logger, ...(redisUrl ? { redisUrl } : {}) });
  let localCas = pki.cas;
  const knownCas = () => uniqueDer([...[...localCas.values()].flatMap((c) => c.chain), ...[...labels.values()].flatMap((l) => [...l.issuingCas, ...l.clientAnchors, ...l.raAnchors])]);
  const upstreamCrls = await parentCrls(cfg, { cache: crlCache, logger, knownCas, onChange: () => revocation.rebuild() });
  const revocation = new RevocationAuthority({
    ...(ledger ? { ledger } : {}),
    upstream: upstreamCrls,
    stale: cfg.server.crl_stale,
    logger,
    onStaleAccepted: (crl) => metrics.staleCrlAccepted(crl),
    ...(opts.now ? { now: opts.now } : {}),
  });
  revocation.setLocalCas(pki.cas);
  const servedCrls = new ServedCrls(ledger, upstreamCrls, logger);
  // OCSP wherever CRLs are: signing layers answer from the ledger, forwarding layers relay to their parents
  const ocsp = ledger || upstreamCrls.length ? new OcspResponder({
    ...(ledger ? { ledger } : {}),
    cas: () => localCas,
    validityMs: (ca) => parseDurationMs(cfg.cas[ca]?.ocsp_validity ?? '1h'),
    ratePerSecond: cfg.server.ocsp_rate,
    ...(upstreamCrls.length ? { upstream: new OcspRelay({ parents: upstreamCrls.map((u) => ({ parent: u.parent, client: u.client, knownCas: () => u.knownCas() })), logger }) } : {}),
    logger,
    ...(opts.now ? { now: opts.now } : {}),
  }) : undefined;
  metrics.watchUpstreamCrls(() => new Map([...servedCrls.fetched()].map(([n, h]) => [n, { thisUpdate: h.crl.thisUpdate, nextUpdate: h.crl.nextUpdate }])));

  const caChain = async (label: Label): Promise<Buffer[]> => {
    try {
      const { svc, key } = serviceFor.get(label.name)!;
      return await svc.get(key);
    } catch (e) {
      // cold start while islanded: our own sub-CA chain still leads to the root
      if (label.issuer instanceof FallbackIssuer) return label.issuer.localChain();
      throw e;
    }
  };

  metrics.setCas(pki.cas);
  const readiness = new Readiness({
    labels: () => labels.values(), caChain, cache, parents: await parentEndpoints(cfg), ...(servedCrls.any ? { crls: () => servedCrls.status() } : {}),
    ...(pki.cas.size ? { cas: () => new Map([...localCas].map(([name, ca]) => [name, revocation.caRevocation(ca)])) } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const services: Services = {
    labels,
    passwords: new PasswordVerifier(cfg.users),
    realm: cfg.server.realm,
    bodyLimit: cfg.server.body_limit,
    logger,
    caChain,
    readiness: () => readiness.report(),
    metrics,
    ...(ledger ? { ledger } : {}),
    revocation,
    crls: servedCrls,
    ...(ocsp ? { ocsp } : {}),
  };
  if (cfg.proxy.length) {
    services.proxy = await createUpstreamProxy(cfg.proxy, {
      logger,
      passwords: services.passwords,
      checkRevoked: (peer, key, anchors) => revocation.assertNotRevoked(linksOfPeer(peer, key, anchors), 'client certificate'),
    });
  }
  // the queue of requests held for an operator: shared through Redis, else in the data directory
  const approvals = usesManualApproval(cfg.labels) ? new ApprovalQueue(openApprovalStore(cfg), cfg.approval, logger) : undefined;
  let approvalTimer: NodeJS.Timeout | undefined;
  if (approvals) {
    services.approvals = approvals;
    metrics.watchApprovals(approvals);
    // expiries nobody polls for are recorded too; every replica sweeps, a transition happens once
    approvalTimer = setInterval(() => {
      approvals.sweep().catch((err: unknown) => logger.warn({ err }, 'sweeping the approval queue failed'));
    }, Math.min(30_000, Math.max(250, approvals.expiryMs / 4)));
    approvalTimer.unref();
  }
  const app = createApp(services);

  let tlsOptions = {
    cert: pki.tls.certChainPem,
    key: pki.tls.keyPem,
    minVersion: cfg.server.tls_min_version,
    maxVersion: 'TLSv1.3' as const,
    requestCert: true,
    rejectUnauthorized: false, // each label decides which client certificates it trusts
    ALPNProtocols: ['http/1.1'],
  };
  const trustPem = () => uniqueDer([...[...labels.values()].flatMap((l) => l.clientAnchors), ...(services.proxy?.clientAnchors ?? [])]).map((d) => toPem('CERTIFICATE', d));
  // forwarded labels learn the parent's chain at run time; OpenSSL must know its intermediates
  await refreshForwardedTrust(labels, caChain);
  // with the parent's chain known, its CRLs can be verified
  await Promise.all(upstreamCrls.map((u) => u.sync()));
  const server = createServer(
    {
      ...tlsOptions,
      ca: trustPem(),
      handshakeTimeout: cfg.server.handshake_timeout * 1000,
      headersTimeout: cfg.server.headers_timeout * 1000,
      requestTimeout: cfg.server.request_timeout * 1000,
      keepAliveTimeout: cfg.server.keep_alive_timeout * 1000,
      connectionsCheckingInterval: 1000,
      // a manufacturer's issuing CA (an intermediate) in client_trust is an anchor of its own
      allowPartialTrustChain: true,
      // HTTP/1.1 without Host gets our text/plain 400 rather than Node's bare one
      requireHostHeader: false,
    },
    app.callback(),
  );
  let trustTimer: NodeJS.Timeout | undefined;
  const forwardRefresh = Math.min(...[...labels.values()].map((l) => (l.cfg.upstream ? l.cfg.upstream.cacerts_refresh * 1000 : Infinity)));
  if (Number.isFinite(forwardRefresh)) {
    trustTimer = setInterval(() => {
      refreshForwardedTrust(labels, caChain).then(
        (changed) => changed && server.setSecureContext({ ...tlsOptions, ca: trustPem() }),
        (err) => logger.warn({ err }, 'refreshing client trust failed'),
      );
    }, Math.max(1000, forwardRefresh / 2));
    trustTimer.unref();
  }
  server.setTimeout(cfg.server.request_timeout * 2000);
  const guard = guardConnections(
    server,
    { maxPerAddress: cfg.server.max_connections_per_address, maxHandshakes: cfg.server.max_handshakes },
    { logger, refused: (reason) => metrics.connectionRefused(reason) },
  );
  let draining = false;
  const answering = new Set<ServerResponse>();
  // prepended: before the app can write headers
  server.prependListener('request', (_req, res) => {
    if (draining) return void res.setHeader('Connection', 'close');
    answering.add(res);
    res.once('close', () => answering.delete(res));
  });
  /** Once draining, a keep-alive client moves on after its current answer (one already begun ends with the grace). */
  const lastAnswers = () => {
    for (const res of answering) if (!res.headersSent) res.setHeader('Connection', 'close');
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));

  const { host, port } = splitHostPort(cfg.server.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const crlServer = cfg.server.crl_listen ? await serveCrls(cfg.server.crl_listen, servedCrls, logger, {
    maxPerAddress: cfg.server.max_connections_per_address,
    headersTimeoutMs: cfg.server.headers_timeout * 1000,
    requestTimeoutMs: cfg.server.request_timeout * 1000,
    keepAliveTimeoutMs: cfg.server.keep_alive_timeout * 1000,
  }, ocsp).catch(async (e: unknown) => {
    await new Promise((r) => server.close(r));
    throw e;
  }) : undefined;
  let crlTimer: NodeJS.Timeout | undefined;
  if (ledger) {
    crlTimer = setInterval(() => {
      try {
        ledger.refreshCrls();
      } catch (err) {
        logger.error({ err }, 're-signing a CRL failed');
      }
    }, crlCheckMs(ledgerCas(cfg, pki.cas)));
    crlTimer.unref();
  }
  let crlFetchTimer: NodeJS.Timeout | undefined;
  if (upstreamCrls.length) {
    let syncing = false;
    const every = Math.max(500, Math.min(...cfgParentRefreshMs(cfg)) / 2);
    crlFetchTimer = setInterval(() => {
      if (syncing) return;
      syncing = true;
      Promise.all(upstreamCrls.map((u) => u.sync())).finally(() => (syncing = false));
    }, every);
    crlFetchTimer.unref();
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const running: RunningGateway = {
    server,
    host,
    port: actual,
    url: `https://${urlHost}:${actual}/.well-known/est`,
    pki,
    labels,
    metrics,
    ...(ledger ? { ledger } : {}),
    ...(crlServer ? { crlPort: (crlServer.address() as AddressInfo).port } : {}),
    async reload(next: Pki) {
      ledger?.setCas(ledgerCas(cfg, next.cas));
      revocation.setLocalCas(next.cas);
      localCas = next.cas;
      // a new sub-CA signed a new TLS certificate
      if (ledger) await recordSetupCertificates(ledger, next);
      await buildLabels(next);
      // a new sub-CA key signs its CRL at once
      try {
        ledger?.refreshCrls();
      } catch (err) {
        logger.error({ err }, 're-signing the CRLs after a reload failed');
      }
      for (const name of labels.keys()) {
        const { svc, key } = serviceFor.get(name)!;
        await svc.refreshNow(key).catch(() => undefined);
      }
      await refreshForwardedTrust(labels, caChain);
      // the TLS certificate too: one from a replaced sub-CA would expire with it
      tlsOptions = { ...tlsOptions, cert: next.tls.certChainPem, key: next.tls.keyPem };
      server.setSecureContext({ ...tlsOptions, ca: trustPem() });
      running.pki = next;
      metrics.setCas(next.cas);
      logger.info({ cas: [...next.cas.keys()] }, 'PKI reloaded');
    },
    async drain({ delayMs, graceMs }) {
      draining = true;
      readiness.draining = true;
      lastAnswers();
      if (delayMs > 0) {
        logger.info({ delayMs, graceMs }, 'draining: unready now, closing the listener after the delay');
        await new Promise((r) => setTimeout(r, delayMs));
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // what is still open after the grace, unfinished handshakes too, keeps nobody waiting
        setTimeout(() => {
          server.closeAllConnections();
          guard.destroyAll();
        }, graceMs).unref();
      });
      if (trustTimer) clearInterval(trustTimer);
      if (crlTimer) clearInterval(crlTimer);
      if (crlFetchTimer) clearInterval(crlFetchTimer);
      if (approvalTimer) clearInterval(approvalTimer);
      if (crlServer) await new Promise((r) => crlServer.close(r));
      await Promise.all(chainServices.map((c) => c.close()));
      for (const f of forwarders.values()) f.close();
      services.proxy?.close();
      await Promise.all(upstreamCrls.map((u) => u.close()));
      await cache.close();
      await crlCache.close();
      await ledger?.close();
      await approvals?.close();
    },
    close: () => running.drain({ delayMs: 0, graceMs: 2000 }),
  };
  return running;
}

/** Errors of Node's HTTP parser and its timeouts: the only ones an HTTP answer can follow. */
const HTTP_LEVEL_ERROR = /^(HPE_|ERR_HTTP_)/;

/**
 * Malformed HTTP and timeouts get a text/plain reason too, then the connection
 * closes. Anything else (a TLS handshake that failed or timed out, a reset) is
 * destroyed: end() on a TLS socket whose handshake never finished waits for
 * that handshake forever, and the connection would stay in CLOSE-WAIT.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!HTTP_LEVEL_ERROR.test(err.code ?? '') || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request timed out']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'request headers are too large']
    : err.code === 'HPE_CLOSED_CONNECTION' ? [400, 'data after Connection: close']
    : [400, 'malformed HTTP request'];
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const uniqueDer = (certs: Buffer[]) => certs.filter((a, i) => certs.findIndex((b) => b.equals(a)) === i);

async function readPemFiles(files: string[]): Promise<Buffer[]> {
  return (await Promise.all(files.map(async (f) => fromPemAll(await readFile(f, 'utf8'), 'CERTIFICATE')))).flat();
}

/** crl_refresh of every forwarded label, in ms. */
const cfgParentRefreshMs = (cfg: Config) =>
  Object.values(cfg.labels).flatMap((l) => (l.mode === 'forward' && l.upstream ? [l.upstream.crl_refresh * 1000] : []));

/**
 * One CRL source per distinct parent (origin, or the label's crl_origin): the
 * first label's connection settings, the smallest crl_refresh and the largest
 * cacerts_max_stale of the labels fetching there. The parent's TLS trust
 * anchors may sign CRLs too.
 */
async function parentCrls(
  cfg: Config,
  o: { cache: ReturnType<typeof createCaChainCache>; logger: Logger; knownCas: () => Buffer[]; onChange: () => void },
): Promise<UpstreamCrls[]> {
  const byOrigin = new Map<string, { up: NonNullable<Config['labels'][string]['upstream']>; refresh: number; maxStale: number }>();
  for (const l of Object.values(cfg.labels)) {
    const up = l.mode === 'forward' ? l.upstream : undefined;
    if (!up) continue;
    const origin = new URL(up.crl_origin ?? up.url).origin;
    const p = byOrigin.get(origin);
    if (!p) byOrigin.set(origin, { up, refresh: up.crl_refresh, maxStale: up.cacerts_max_stale });
    else {
      p.refresh = Math.min(p.refresh, up.crl_refresh);
      p.maxStale = Math.max(p.maxStale, up.cacerts_max_stale);
    }
  }
  return Promise.all(
    [...byOrigin].map(async ([origin, p]) => {
      const trust = await readPemFiles([p.up.trust]);
      return new UpstreamCrls({
        parent: origin,
        client: await upstreamClient({ ...p.up, url: origin }, { logger: o.logger }),
        cache: o.cache,
        refreshMs: p.refresh * 1000,
        maxStaleMs: p.maxStale * 1000,
        lockTtlMs: (p.up.connect_timeout + p.up.timeout) * 1000,
        knownCas: () => [...o.knownCas(), ...trust],
        onChange: o.onChange,
        logger: o.logger,
      });
    }),
  );
}

/** Every distinct parent this layer forwards to, for /readyz. */
async function parentEndpoints(cfg: Config): Promise<ParentEndpoint[]> {
  const byUrl = new Map<string, ParentEndpoint>();
  for (const l of Object.values(cfg.labels)) {
    const up = l.mode === 'forward' ? l.upstream : undefined;
    if (!up) continue;
    const origin = new URL(up.url).origin;
    if (byUrl.has(origin)) continue;
    // the same files, read the same way, as the forwarder's
    const o = await upstreamClientOptions(up);
    byUrl.set(origin, { url: origin, trust: o.trust!, ...(o.clientCert ? { clientCert: o.clientCert } : {}), connectTimeoutMs: o.connectTimeoutMs! });
  }
  return [...byUrl.values()];
}

/**
 * A forwarded label trusts client certificates issued through the parent, so
 * the parent's CA chain joins its anchors and issuing CAs. Returns whether
 * anything changed.
 */
/**
 * A label's key in the shared cache: its name and where its chain comes from
 * (the parent's URL, or the local CA's subject), so that layers sharing one
 * Redis and key_prefix never serve each other's chains under one label name.
 */
export function chainCacheKey(name: string, lc: Pick<LabelConfig, 'mode' | 'ca'> & { upstream?: { url: string } | undefined }, ca?: CaMaterial): string {
  const source = lc.mode === 'forward' && lc.upstream ? `forward ${lc.upstream.url}` : `issue ${ca?.fields.subjectDer.toString('hex') ?? lc.ca}`;
  return `${name}:${createHash('sha256').update(source).digest('hex').slice(0, 16)}`;
}

async function refreshForwardedTrust(labels: Map<string, Label>, caChain: (l: Label) => Promise<Buffer[]>): Promise<boolean> {
  let changed = false;
  const forwarded = [...labels.values()].filter((l) => l.cfg.mode === 'forward');
  // all parents at once: a silent parent costs one timeout at start-up, not one per label
  // (undefined: parent down and nothing cached yet, keep what we have)
  const chains = await Promise.all(forwarded.map((l) => caChain(l).catch(() => undefined)));
  forwarded.forEach((label, i) => {
    const chain = chains[i];
    if (!chain) return;
    // issuing CAs and RA anchors follow the parent's chain even when the anchors
    // do not change (a fallback label's own chain already holds the parent's)
    label.issuingCas = uniqueDer([...label.staticIssuingCas, ...chain]);
    label.raAnchors = uniqueDer([...label.staticRaAnchors, ...chain]);
    const anchors = uniqueDer([...label.staticAnchors, ...chain]);
    if (anchors.length !== label.clientAnchors.length || anchors.some((a, j) => !a.equals(label.clientAnchors[j]!))) {
      label.clientAnchors = anchors;
      changed = true;
    }
  });
  return changed;
}
