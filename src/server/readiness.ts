// /readyz: can this replica serve every label's CA chain, and how are the
// parent layer and Redis doing? Only the first decides readiness. A replica
// whose parent or Redis is down still serves cached chains and, with a
// fallback, issues islanded; taking it out of its Service would only make the
// outage worse for the layer below. The other two are reported for operators.
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import type { CaChainCache } from '../cache/index.js';
import type { EstClientOptions } from '../transport/est-client.js';
import type { Label } from './label.js';

/** Probes of one parent are shared for this long, so probes of many replicas don't add up. */
export const PARENT_PROBE_TTL_MS = 2000;

export interface ParentEndpoint {
  url: string;
  trust: NonNullable<EstClientOptions['trust']>;
  clientCert?: EstClientOptions['clientCert'];
  connectTimeoutMs: number;
}

export type ParentState = { reachable: true; ms: number } | { reachable: false; error: string };

export interface ReadinessReport {
  ready: boolean;
  /** Per label: "ok" or why its CA chain cannot be served. */
  labels: Record<string, string>;
  /** Per parent URL: whether a TLS handshake with it (as this layer's RA) succeeds. */
  parents: Record<string, ParentState>;
  /** "ok", "not configured" (in-process cache) or why Redis does not answer. */
  redis: string;
  /** Shutting down (SIGTERM): unready whatever the rest says, so that traffic moves elsewhere first. */
  draining?: true;
  /** Per local CA: "ok", or that its CRL is missing or past nextUpdate (relying parties then refuse its certificates). */
  crls?: Record<string, string>;
  /** Per local CA: "ok", or that its parent revoked it, so it signs nothing. */
  cas?: Record<string, string>;
}

/** One TLS handshake with the parent, verified against the configured trust, presenting the RA certificate. */
export function probeParent(p: ParentEndpoint): Promise<ParentState> {
  const u = new URL(p.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port: Number(u.port || 443),
      ca: p.trust,
      ...(p.clientCert ? { cert: p.clientCert.cert, key: p.clientCert.key } : {}),
      ...(isIP(host) ? {} : { servername: host }),
      ALPNProtocols: ['http/1.1'],
    });
    let settled = false;
    const done = (s: ParentState) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(s);
    };
    const timer = setTimeout(() => done({ reachable: false, error: `no TLS handshake within ${p.connectTimeoutMs} ms` }), p.connectTimeoutMs);
    socket.once('secureConnect', () => done({ reachable: true, ms: Math.round(performance.now() - started) }));
    // `on`, not `once`: a second error event with no listener would take the process down
    socket.on('error', (e: NodeJS.ErrnoException) => done({ reachable: false, error: e.code ? `${e.code}: ${e.message}` : e.message }));
  });
}

export class Readiness {
  /** Set once at SIGTERM; never cleared. */
  draining = false;
  private readonly probes = new Map<string, { at: number; state: Promise<ParentState> }>();

  constructor(
    private readonly o: {
      labels: () => Iterable<Label>;
      caChain: (label: Label) => Promise<Buffer[]>;
      cache: CaChainCache;
      parents: ParentEndpoint[];
      /** thisUpdate/nextUpdate of each local CA's stored CRL. */
      crls?: () => Map<string, { nextUpdate: Date } | undefined>;
      /** Per local CA: why it may sign nothing, or undefined. */
      cas?: () => Map<string, string | undefined>;
      now?: () => number;
    },
  ) {}

  async report(): Promise<ReadinessReport> {
    const labels: Record<string, string> = {};
    let ready = true;
    const [, parents, redis] = await Promise.all([
      Promise.all(
        [...this.o.labels()].map(async (label) => {
          try {
            await this.o.caChain(label);
            labels[label.name] = 'ok';
          } catch (e) {
            ready = false;
            labels[label.name] = e instanceof Error ? e.message : 'unavailable';
          }
        }),
      ),
      this.parents(),
      this.redis(),
    ]);
    const crls = this.o.crls ? { crls: this.crls(this.o.crls) } : {};
    // reported, not deciding: a layer whose CA is revoked still forwards to its parent
    const cas = this.o.cas ? { cas: Object.fromEntries([...this.o.cas()].map(([name, why]) => [name, why ?? 'ok'])) } : {};
    return this.draining ? { ready: false, labels, parents, redis, ...crls, ...cas, draining: true } : { ready, labels, parents, redis, ...crls, ...cas };
  }

  /** Reported, not deciding: every replica shares the ledger, so taking one out would fix nothing. */
  private crls(status: () => Map<string, { nextUpdate: Date } | undefined>): Record<string, string> {
    const now = (this.o.now ?? Date.now)();
    const out: Record<string, string> = {};
    try {
      for (const [ca, s] of status()) {
        out[ca] = !s ? 'no CRL signed yet' : s.nextUpdate.getTime() <= now ? `past its nextUpdate (${s.nextUpdate.toISOString()})` : 'ok';
      }
    } catch (e) {
      out['*'] = `ledger unreadable: ${(e as Error).message}`;
    }
    return out;
  }

  private async parents(): Promise<Record<string, ParentState>> {
    const now = (this.o.now ?? Date.now)();
    const out: Record<string, ParentState> = {};
    await Promise.all(
      this.o.parents.map(async (p) => {
        let probe = this.probes.get(p.url);
        if (!probe || now - probe.at >= PARENT_PROBE_TTL_MS) this.probes.set(p.url, (probe = { at: now, state: probeParent(p) }));
        out[p.url] = await probe.state;
      }),
    );
    return out;
  }

  private async redis(): Promise<string> {
    if (!this.o.cache.ping) return 'not configured';
    try {
      await this.o.cache.ping();
      return 'ok';
    } catch (e) {
      return `unavailable: ${(e as Error).message}`;
    }
  }
}
