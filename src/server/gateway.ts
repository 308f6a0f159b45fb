// One gateway process: labels wired to issuers, the Koa app on an HTTPS server.
import { STATUS_CODES } from 'node:http';
import { type Server, createServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { PasswordVerifier } from '../auth/password.js';
import { createCaChainCache } from '../cache/index.js';
import { CaChainService } from '../cache/chain-service.js';
import type { Config } from '../config/schema.js';
import { fromPemAll } from '../est/base64.js';
import { LocalIssuer } from '../issuer/local-issuer.js';
import type { KeySpec } from '../pki/keys.js';
import { type Pki, preparePki } from '../pki/setup.js';
import { type Logger, createLogger } from '../util/log.js';
import { createApp } from './app.js';
import { type Label, makeLabel } from './label.js';
import type { Services } from './services.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Already prepared PKI (the cluster primary prepares it once). */
  pki?: Pki;
}

export interface RunningGateway {
  server: Server;
  host: string;
  port: number;
  /** https://HOST:PORT/.well-known/est */
  url: string;
  pki: Pki;
  labels: Map<string, Label>;
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

  const labels = new Map<string, Label>();
  const anchorsForTls: Buffer[] = [];
  for (const [name, lc] of Object.entries(cfg.labels)) {
    const ca = pki.cas.get(lc.ca)!;
    const extra = (await Promise.all(lc.client_trust.map(async (f) => fromPemAll(await readFile(f, 'utf8'), 'CERTIFICATE')))).flat();
    const anchors = [...ca.chain, ...extra];
    anchorsForTls.push(...anchors);
    labels.set(name, makeLabel(name, lc, new LocalIssuer(ca, lc.serverkeygen_key as KeySpec), anchors, [ca.certDer]));
  }

  const redisUrl = cfg.redis.url;
  const cache = createCaChainCache({ keyPrefix: cfg.redis.key_prefix, logger, ...(redisUrl ? { redisUrl } : {}) });
  const chains = new CaChainService(cache, { refreshAfterMs: LOCAL_CHAIN_REFRESH_MS, maxStaleMs: 24 * LOCAL_CHAIN_REFRESH_MS, logger });
  for (const label of labels.values()) chains.register(label.name, () => label.issuer.caCerts());

  const services: Services = {
    labels,
    passwords: new PasswordVerifier(cfg.users),
    realm: cfg.server.realm,
    bodyLimit: cfg.server.body_limit,
    logger,
    caChain: (label) => chains.get(label.name),
  };
  const app = createApp(services);

  const uniqueAnchors = anchorsForTls.filter((a, i) => anchorsForTls.findIndex((b) => b.equals(a)) === i);
  const server = createServer(
    {
      cert: pki.tls.certChainPem,
      key: pki.tls.keyPem,
      minVersion: cfg.server.tls_min_version,
      maxVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false, // each label decides which client certificates it trusts
      ca: uniqueAnchors.map((d) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----\n`),
      ALPNProtocols: ['http/1.1'],
      handshakeTimeout: cfg.server.headers_timeout * 1000,
      headersTimeout: cfg.server.headers_timeout * 1000,
      requestTimeout: cfg.server.request_timeout * 1000,
      keepAliveTimeout: cfg.server.keep_alive_timeout * 1000,
      connectionsCheckingInterval: 1000,
    },
    app.callback(),
  );
  server.setTimeout(cfg.server.request_timeout * 2000);
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
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    host,
    port: actual,
    url: `https://${urlHost}:${actual}/.well-known/est`,
    pki,
    labels,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      await chains.close();
      await cache.close();
    },
  };
}

/** Malformed HTTP and timeouts get a text/plain reason too, then the connection closes. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
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
