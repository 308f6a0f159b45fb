// Optional Prometheus endpoint for the daemon: expiry, next renewal and outcomes per certificate.
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { serveMetrics } from '../util/metrics-server.js';
import type { StatusDoc } from './status.js';

export class ClientMetrics {
  readonly registry = new Registry();
  private readonly notAfter = new Gauge({ name: 'estgw_client_cert_not_after_seconds', help: 'notAfter of the current certificate (Unix time)', labelNames: ['cert'], registers: [this.registry] });
  private readonly nextRenewal = new Gauge({ name: 'estgw_client_next_renewal_seconds', help: 'Next scheduled renewal attempt (Unix time)', labelNames: ['cert'], registers: [this.registry] });
  private readonly failures = new Gauge({ name: 'estgw_client_consecutive_failures', help: 'Failed attempts since the last success', labelNames: ['cert'], registers: [this.registry] });
  private readonly revoked = new Gauge({ name: 'estgw_client_cert_revoked', help: '1 when the last CRL check found the certificate revoked, 0 when not; absent when it could not tell', labelNames: ['cert'], registers: [this.registry] });
  private readonly stopped = new Gauge({ name: 'estgw_client_renewal_stopped', help: '1 when renewal stopped (a revoked certificate that reenroll_revoked may not replace)', labelNames: ['cert'], registers: [this.registry] });
  private readonly attempts = new Counter({ name: 'estgw_client_renewals_total', help: 'Renewal attempts by result', labelNames: ['cert', 'result'], registers: [this.registry] });

  attempt(cert: string, result: 'success' | 'failure' | 'pending'): void {
    this.attempts.inc({ cert, result });
  }

  update(doc: StatusDoc): void {
    for (const c of doc.certs) {
      if (c.notAfter) this.notAfter.set({ cert: c.name }, Date.parse(c.notAfter) / 1000);
      if (c.nextRenewal) this.nextRenewal.set({ cert: c.name }, Date.parse(c.nextRenewal) / 1000);
      this.failures.set({ cert: c.name }, c.failures);
      this.stopped.set({ cert: c.name }, c.stopped ? 1 : 0);
      if (c.revocation && c.revocation.state !== 'unknown') this.revoked.set({ cert: c.name }, c.revocation.state === 'revoked' ? 1 : 0);
      else this.revoked.remove({ cert: c.name });
    }
  }

  /** Serves GET /metrics on HOST:PORT. */
  listen(hostPort: string): Promise<Server> {
    return serveMetrics(hostPort, this.registry);
  }
}
