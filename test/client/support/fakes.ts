// A clock whose time the test moves, and an in-memory EST server behind the
// daemon's client factory: the renewal schedule is driven without sleeping.
import { X509Certificate } from 'node:crypto';
import type { Clock } from '../../../src/client/daemon.js';
import type { CsrSource } from '../../../src/transport/est-client.js';
import type { ClientFactory, EstOps } from '../../../src/client/renew.js';
import { EstError } from '../../../src/errors.js';
import { type Csr, parseCsr } from '../../../src/est/csr.js';
import { type TestCa, issueForCsr } from './pki.js';

export class FakeClock implements Clock {
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): number {
    this.timers.set(++this.seq, { at: this.t + ms, fn });
    return this.seq;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  pending(): number {
    return this.timers.size;
  }
  /** Moves time to `to`, firing every timer due on the way, and lets the daemon finish after each. */
  async advanceTo(to: number, settle: () => Promise<void>): Promise<void> {
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await settle();
    }
    this.t = to;
  }
}

export interface Call {
  op: 'simpleenroll' | 'simplereenroll';
  /** CN of the TLS client certificate presented, if any. */
  tlsCn?: string;
  basic: boolean;
  csr: Csr;
  at: number;
}

/** Answers like an EST server that checks client certificates against its clock. */
export class FakeEst {
  calls: Call[] = [];
  down = false;
  pending = 0;
  refuse: Set<string> = new Set(); // "op:cn" pairs refused with 403
  /** "op:cn" pairs refused with 403 and this reason (what a gateway says), instead of the generic one. */
  refuseWith: Map<string, string> = new Map();
  days = 10;
  /** Replaces what would be issued (verification tests). */
  tamper: ((csrDer: Buffer) => Buffer) | undefined;

  constructor(
    readonly ca: TestCa,
    readonly clock: FakeClock,
  ) {}

  readonly factory: ClientFactory = (o): EstOps => ({
    cacerts: async () => {
      if (this.down) throw new EstError('unavailable', 'cacerts: cannot reach est.test: ECONNREFUSED');
      return [this.ca.der];
    },
    simpleenroll: (csr) => this.handle('simpleenroll', o.clientCert?.cert, o.username !== undefined, csr),
    simplereenroll: (csr) => this.handle('simplereenroll', o.clientCert?.cert, o.username !== undefined, csr),
    close: () => {},
  });

  private async handle(op: Call['op'], certPem: string | Buffer | undefined, basic: boolean, src: CsrSource) {
    const der = typeof src === 'function' ? await src({}) : src;
    const x = certPem ? new X509Certificate(certPem) : undefined;
    const tlsCn = x?.subject.replace(/^CN=/, '');
    this.calls.push({ op, ...(tlsCn ? { tlsCn } : {}), basic, csr: parseCsr(der), at: this.clock.now() });
    if (this.down) throw new EstError('unavailable', `${op}: cannot reach est.test: ECONNREFUSED`);
    if (this.pending > 0) {
      this.pending--;
      throw new EstError('pending', `${op}: the server holds the request for approval; retry after 300 s`, { retryAfter: 300 });
    }
    const now = this.clock.now();
    const certValid = x && Date.parse(x.validFrom) <= now && now < Date.parse(x.validTo);
    if (op === 'simplereenroll' && !certValid) throw new EstError('forbidden', 'simplereenroll: server answered 403 Forbidden: no valid client certificate');
    if (!certValid && !basic) throw new EstError('unauthorized', `${op}: server answered 401 Unauthorized`);
    if (this.refuse.has(`${op}:${tlsCn ?? ''}`)) throw new EstError('forbidden', `${op}: server answered 403 Forbidden: refused for ${tlsCn}`);
    const reason = this.refuseWith.get(`${op}:${tlsCn ?? ''}`);
    if (reason) throw new EstError('forbidden', `${op}: server answered 403 Forbidden: ${reason}`);
    const cert = this.tamper ? this.tamper(der) : issueForCsr(this.ca, der, { days: this.days, now });
    return { certificate: cert, extra: [] };
  }
}
