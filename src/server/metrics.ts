// Prometheus metrics of one gateway process. With several workers each has its
// own registry and the primary sums them (prom-client's AggregatorRegistry).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApprovalQueue } from '../approval/queue.js';
import type { Ledger } from '../ledger/ledger.js';
import type { CaMaterial } from '../pki/ca.js';

/** What estgw_ca_certificates_expiring counts ahead. */
export const EXPIRING_WINDOW_MS = 7 * 86_400_000;

/** How a certificate came to be: signed here, by the parent layer, or here because the parent was unreachable. */
export type IssuedHow = 'local' | 'forwarded' | 'islanded';

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'estgw_requests_total',
    help: 'EST requests by label, operation and HTTP status',
    labelNames: ['label', 'op', 'status'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'estgw_request_duration_seconds',
    help: 'Time to answer an EST request, by operation',
    labelNames: ['op'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly issued = new Counter({
    name: 'estgw_certificates_issued_total',
    help: 'Certificates handed out, by label and how: local (this layer signed), forwarded (a parent signed), islanded (signed here while the parent was unreachable)',
    labelNames: ['label', 'how'],
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: 'estgw_connections_refused_total',
    help: 'Connections reset before TLS: per_address (server.max_connections_per_address) or handshakes (server.max_handshakes)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly caNotAfter = new Gauge({
    name: 'estgw_ca_not_after_seconds',
    help: 'notAfter of each local CA certificate (Unix time): alert well before it',
    labelNames: ['ca'],
    registers: [this.registry],
    aggregator: 'max',
  });

  private readonly recorded = new Counter({
    name: 'estgw_ca_certificates_issued_total',
    help: 'Certificates a local CA signed and the issuance ledger recorded, by CA',
    labelNames: ['ca'],
    registers: [this.registry],
  });
  private ledger: Ledger | undefined;
  private readonly crlAge = new Gauge({
    name: 'estgw_crl_age_seconds',
    help: 'Seconds since thisUpdate of each local CA\'s current CRL (re-signed at half its validity)',
    labelNames: ['ca'],
    registers: [this.registry],
    aggregator: 'max',
    collect: () => this.collectCrls(),
  });
  private readonly crlNextUpdate = new Gauge({
    name: 'estgw_crl_next_update_seconds',
    help: 'nextUpdate of each local CA\'s current CRL (Unix time): relying parties reject it after this',
    labelNames: ['ca'],
    registers: [this.registry],
    aggregator: 'max',
    collect: () => this.collectCrls(),
  });

  private upstreamCrls: (() => Map<string, { thisUpdate: Date; nextUpdate: Date }>) | undefined;
  private readonly upstreamCrlAge = new Gauge({
    name: 'estgw_upstream_crl_age_seconds',
    help: 'Seconds since thisUpdate of each CRL fetched from the parent layer, by the name /crl/ serves it under',
    labelNames: ['crl'],
    registers: [this.registry],
    aggregator: 'max',
    collect: () => this.collectUpstreamCrls(),
  });
  private readonly upstreamCrlNextUpdate = new Gauge({
    name: 'estgw_upstream_crl_next_update_seconds',
    help: 'nextUpdate of each CRL fetched from the parent layer (Unix time): past it, server.crl_stale decides',
    labelNames: ['crl'],
    registers: [this.registry],
    aggregator: 'min',
    collect: () => this.collectUpstreamCrls(),
  });
  private readonly staleAccepted = new Counter({
    name: 'estgw_crl_stale_accepted_total',
    help: 'Client chains checked against a CRL past its nextUpdate and let through (server.crl_stale = "open"), by CRL',
    labelNames: ['crl'],
    registers: [this.registry],
  });
  private approvals: ApprovalQueue | undefined;
  // read from the queue at scrape time: decisions come from `estgw requests` and other replicas
  private readonly approvalPending = new Gauge({
    name: 'estgw_approval_pending',
    help: 'Requests held for manual approval, by label (the queue every replica of the layer shares)',
    labelNames: ['label'],
    registers: [this.registry],
    aggregator: 'max',
    collect: async () => {
      const snap = await this.approvalSnapshot();
      this.approvalPending.reset();
      for (const [label, p] of snap) this.approvalPending.set({ label }, p.count);
    },
  });
  private readonly approvalOldest = new Gauge({
    name: 'estgw_approval_oldest_pending_seconds',
    help: 'Age of the oldest request held for manual approval, by label',
    labelNames: ['label'],
    registers: [this.registry],
    aggregator: 'max',
    collect: async () => {
      const now = Date.now();
      const snap = await this.approvalSnapshot();
      this.approvalOldest.reset();
      for (const [label, p] of snap) this.approvalOldest.set({ label }, Math.max(0, Math.round((now - p.oldest) / 1000)));
    },
  });
  /** One read of the queue serves both gauges of a scrape. */
  private approvalRead: Promise<Map<string, { count: number; oldest: number }>> | undefined;

  constructor(o: { processMetrics?: boolean } = {}) {
    // read from the ledger at scrape time: revocations come from `estgw certs revoke` in another process
    this.perCaFromLedger('estgw_ca_certificates_revoked', 'Certificates of each local CA revoked in the issuance ledger', (l) => l.caNames().map((ca) => [ca, l.store.revokedCount(ca)]));
    // an index by notAfter: a scrape reads the week's expiries, not the whole ledger
    this.perCaFromLedger(
      'estgw_ca_certificates_expiring',
      'Certificates of each local CA that expire within the next 7 days, not revoked, not yet expired',
      (l) => l.expiringCounts(EXPIRING_WINDOW_MS),
    );
    if (o.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'estgw_' });
  }

  request(label: string | undefined, op: string | null, status: number, seconds: number): void {
    const o = op ?? 'none';
    this.requests.inc({ label: label ?? 'none', op: o, status: String(status) });
    this.duration.observe({ op: o }, seconds);
  }

  issuedCertificate(label: string, how: IssuedHow): void {
    this.issued.inc({ label, how });
  }

  connectionRefused(reason: string): void {
    this.refused.inc({ reason });
  }

  recordedCertificate(ca: string): void {
    this.recorded.inc({ ca });
  }

  /** A gauge per local CA, read from the ledger at each scrape (workers share it: the primary takes the max). */
  private perCaFromLedger(name: string, help: string, read: (l: Ledger) => Iterable<readonly [string, number]>): Gauge {
    const g: Gauge = new Gauge({
      name, help, labelNames: ['ca'], registers: [this.registry], aggregator: 'max',
      collect: () => {
        g.reset();
        if (this.ledger) for (const [ca, n] of read(this.ledger)) g.set({ ca }, n);
      },
    });
    return g;
  }

  watchLedger(ledger: Ledger): void {
    this.ledger = ledger;
  }

  watchApprovals(queue: ApprovalQueue): void {
    this.approvals = queue;
  }

  private approvalSnapshot(): Promise<Map<string, { count: number; oldest: number }>> {
    if (!this.approvals) return Promise.resolve(new Map());
    if (!this.approvalRead) {
      // the queue unreachable (Redis down): no values rather than a failed scrape
      this.approvalRead = this.approvals.pendingByLabel().catch(() => new Map());
      void this.approvalRead.finally(() => (this.approvalRead = undefined));
    }
    return this.approvalRead;
  }

  private collectCrls(): void {
    this.crlAge.reset();
    this.crlNextUpdate.reset();
    const now = Date.now();
    for (const [ca, s] of this.ledger?.crlStatus() ?? []) {
      if (!s) continue;
      this.crlAge.set({ ca }, Math.max(0, Math.round((now - s.thisUpdate.getTime()) / 1000)));
      this.crlNextUpdate.set({ ca }, Math.floor(s.nextUpdate.getTime() / 1000));
    }
  }

  /** The CRLs fetched from the parent, read at scrape time. */
  watchUpstreamCrls(status: () => Map<string, { thisUpdate: Date; nextUpdate: Date }>): void {
    this.upstreamCrls = status;
  }

  staleCrlAccepted(crl: string): void {
    this.staleAccepted.inc({ crl });
  }

  private collectUpstreamCrls(): void {
    this.upstreamCrlAge.reset();
    this.upstreamCrlNextUpdate.reset();
    const now = Date.now();
    for (const [crl, s] of this.upstreamCrls?.() ?? []) {
      this.upstreamCrlAge.set({ crl }, Math.max(0, Math.round((now - s.thisUpdate.getTime()) / 1000)));
      this.upstreamCrlNextUpdate.set({ crl }, Math.floor(s.nextUpdate.getTime() / 1000));
    }
  }

  setCas(cas: Map<string, CaMaterial>): void {
    this.caNotAfter.reset();
    for (const [name, ca] of cas) this.caNotAfter.set({ ca: name }, Math.floor(ca.fields.notAfter.getTime() / 1000));
  }
}
