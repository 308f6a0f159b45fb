// How long the cluster primary waits before replacing a worker that died:
// doubling while workers keep dying young (a bad disk, a broken CA file), so a
// crash loop does not spin the CPU, and back to the first step once a worker
// has served for a while, so one crash after weeks is replaced at once.

export interface RestartBackoffOptions {
  /** Wait after the first death. */
  firstMs?: number;
  maxMs?: number;
  /** A worker that served this long was healthy: its death starts the back-off afresh. */
  healthyAfterMs?: number;
  now?: () => number;
}

export class RestartBackoff {
  private deaths = 0;
  private readonly firstMs: number;
  private readonly maxMs: number;
  private readonly healthyAfterMs: number;
  private readonly now: () => number;

  constructor(o: RestartBackoffOptions = {}) {
    this.firstMs = o.firstMs ?? 100;
    this.maxMs = o.maxMs ?? 30_000;
    this.healthyAfterMs = o.healthyAfterMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  /** A worker died: the wait before forking its replacement. `servingSince`: when it began to listen (undefined: it never did). */
  afterExit(servingSince: number | undefined): number {
    if (servingSince !== undefined && this.now() - servingSince >= this.healthyAfterMs) this.deaths = 0;
    const ms = Math.min(this.maxMs, this.firstMs * 2 ** this.deaths);
    if (ms < this.maxMs) this.deaths++;
    return ms;
  }
}
