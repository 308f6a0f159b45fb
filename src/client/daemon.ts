// The renewal loop: keeps every configured certificate fresh. One timer wakes it
// at the earliest due time; due certificates are handled one at a time in
// order (EST identity first, since the others present it). Failures never touch
// the files on disk and are retried within the policy. Clock, timers, RNG, key
// generation and the EST client are injected, so tests drive it without sleeping
// or a network.
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type EstError, isEstError } from '../errors.js';
import { toPem } from '../est/base64.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { type ClientCrl, CrlRound, type RevocationReport, checkCertificate, crlKey, normalSerial } from './revocation.js';
import { formatName } from '../est/name.js';
import { type KeySpec, generateKey } from '../pki/keys.js';
import { type Logger, silentLogger } from '../util/log.js';
import { formatDuration } from '../util/durations.js';
import type { ClientMetrics } from './metrics.js';
import type { LoadedPair } from './pair.js';
import { type ClientFactory, type RenewState, RevokedByServer, defaultClientFactory, readCurrentPair, renewOnce } from './renew.js';
import { type Validity, nextAfterSuccess, renewalTime, retryDelay } from './schedule.js';
import type { CertSpec, ClientConfig } from './spec.js';
import { type CertStatus, type StatusDoc, readStatus, writeStatus } from './status.js';
import { PairStore } from './store.js';

export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * The longest single sleep. Timers run on a monotonic clock that may stand
 * still while the machine is suspended; waking at least this often re-reads the
 * wall clock, so a certificate is never left to expire because of a suspend
 * (the failure smallstep's renewer documents).
 */
export const MAX_SLEEP_MS = 10 * 60_000;
/** CRLs are fetched again no sooner than this, however close their nextUpdate. */
const MIN_CRL_REFRESH_MS = 60_000;
/** After a check that could not tell (gateway down, CRL missing), the next one comes within this. */
const CRL_PROBLEM_RETRY_MS = 5 * 60_000;
const POST_RENEW_TIMEOUT_MS = 60_000;

export type CommandRunner = (command: string, env: Record<string, string>) => Promise<void>;

export interface DaemonOptions {
  clock?: Clock;
  rng?: () => number;
  logger?: Logger;
  makeClient?: ClientFactory;
  generateKey?: (spec: KeySpec) => Promise<KeyObject>;
  runCommand?: CommandRunner;
  metrics?: ClientMetrics;
}

export interface AttemptReport {
  name: string;
  ok: boolean;
  error?: string;
  notAfter?: string;
}

interface Job extends RenewState {
  spec: CertSpec;
  store: PairStore;
  nextAt: number;
  failures: number;
  validity?: Validity;
  subject?: string;
  serial?: string;
  lastAttempt?: number;
  lastSuccess?: number;
  lastError?: string;
  revocation?: RevocationReport;
  /** Serial of the current certificate once known revoked (CRL or the server's 403). */
  revokedSerial?: string;
  /** Why renewal stopped. */
  stopped?: string;
  /** The server has held the request (202) since then, until it issues or refuses. */
  pendingSince?: number;
}

/** Runs `sh -c command`; rejects with the last line of stderr when it fails. */
export const runShell: CommandRunner = (command, env) =>
  new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), POST_RENEW_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else {
        const last = stderr.trim().split('\n').pop() ?? '';
        reject(new Error(`exited with ${signal ?? code}${last ? `: ${last}` : ''}`));
      }
    });
  });

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();

/** EST identities first: the other certificates present them. */
function ordered(certs: CertSpec[]): CertSpec[] {
  const identities = new Set(certs.map((c) => c.auth.identity).filter((n): n is string => n !== undefined));
  return [...certs.filter((c) => identities.has(c.name)), ...certs.filter((c) => !identities.has(c.name))];
}

export class ClientDaemon {
  private cfg: ClientConfig;
  private jobs: Job[] = [];
  private readonly clock: Clock;
  private readonly rng: () => number;
  private readonly log: Logger;
  private readonly o: DaemonOptions;
  private timer: unknown;
  private chain: Promise<void> = Promise.resolve();
  private stopped = true;
  private initialized = false;
  private nextCrlAt = 0;
  /** The newest CRL seen per issuer key: what `[crl] out` holds, kept when a later fetch fails. */
  private readonly crls = new Map<string, ClientCrl>();
  private crlOutWritten: string | undefined;

  constructor(cfg: ClientConfig, o: DaemonOptions = {}) {
    this.cfg = cfg;
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.rng = o.rng ?? Math.random;
    this.log = o.logger ?? silentLogger();
  }

  /** Reads what is on disk and computes each certificate's next renewal. */
  async init(): Promise<void> {
    const old = new Map(this.jobs.map((j) => [j.spec.name, j]));
    // a new process: since when a request still held (its key kept on disk) has waited, from the last status file
    const before = old.size ? undefined : await readStatus(this.cfg.statusFile).catch(() => undefined);
    this.jobs = ordered(this.cfg.certs).map((spec) => {
      // what was learnt about a certificate survives a reload; where it lives and how it is renewed come from the new spec
      const prev = old.get(spec.name);
      const kept = prev
        ? {
            failures: prev.failures, lastAttempt: prev.lastAttempt, lastSuccess: prev.lastSuccess, lastError: prev.lastError, pendingKey: prev.pendingKey,
            pendingSince: prev.pendingSince, revocation: prev.revocation, revokedSerial: prev.revokedSerial,
          }
        : { failures: 0 };
      return { ...kept, spec, store: new PairStore(spec.certFile, spec.keyFile), nextAt: 0 };
    });
    for (const j of this.jobs) {
      await j.store.cleanup();
      const waited = before?.certs.find((c) => c.name === j.spec.name)?.pendingSince;
      if (waited && (await j.store.readPendingKey()) !== undefined) j.pendingSince = Date.parse(waited);
      const pair = await readCurrentPair(j.store, j.spec.name, this.log);
      this.noteCurrent(j, pair);
      j.nextAt = j.validity ? renewalTime(j.validity, j.spec.policy, this.rng) : this.clock.now();
      // a revocation learnt before a reload holds while the same certificate is there, under the new reenroll_revoked
      if (j.revokedSerial !== undefined && j.revokedSerial === j.serial) this.onRevoked(j, 'known before the reload');
      else {
        delete j.revokedSerial;
        if (j.revocation?.state === 'revoked') delete j.revocation;
      }
      this.log.info({ cert: j.spec.name, subject: j.subject ?? null, notAfter: j.validity ? new Date(j.validity.notAfter).toISOString() : null, next: new Date(j.nextAt).toISOString() }, 'certificate scheduled');
    }
    this.initialized = true;
    this.nextCrlAt = this.clock.now();
    await this.writeStatus();
  }

  private noteCurrent(j: Job, pair: LoadedPair | undefined): void {
    if (!pair) {
      delete j.validity;
      delete j.subject;
      delete j.serial;
      return;
    }
    j.validity = { notBefore: pair.leaf.notBefore.getTime(), notAfter: pair.leaf.notAfter.getTime() };
    j.subject = formatName(pair.leaf.subject);
    j.serial = pair.leaf.serial.toString('hex');
  }

  /** Renews what is due and enrolls what is missing, then returns (`--once`). */
  async runOnce(): Promise<AttemptReport[]> {
    if (!this.initialized) await this.init();
    const reports: AttemptReport[] = [];
    await this.serial(async () => {
      await this.runDue({ forceCrl: true, reports });
      await this.writeStatus();
    });
    // a certificate whose renewal stopped is a failure of this run too
    for (const j of this.jobs) if (j.stopped && !reports.some((r) => r.name === j.spec.name)) reports.push({ name: j.spec.name, ok: false, error: j.stopped });
    return reports;
  }

  /** Starts the loop. */
  async start(): Promise<void> {
    if (!this.initialized) await this.init();
    this.stopped = false;
    this.schedule();
  }

  /** Stops the loop after the attempt in progress, if any. Files are always consistent, so this never waits for more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  /** SIGHUP: new configuration, keeping what is known about certificates of the same name. */
  async reload(cfg: ClientConfig): Promise<void> {
    const wasRunning = !this.stopped;
    await this.stop();
    this.cfg = cfg;
    await this.init();
    if (wasRunning) await this.start();
  }

  /** Resolves when no attempt is running (tests). */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Time of the next wake-up, for tests and logs. */
  nextWake(): number | undefined {
    return this.jobs.length ? Math.min(...this.jobs.map((j) => j.nextAt), this.cfg.crl ? this.nextCrlAt : Infinity) : undefined;
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch((e: unknown) => this.log.error({ err: oneLine(e) }, 'renewal loop error'));
    return run;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    const next = this.nextWake();
    if (next === undefined) return;
    const delay = Math.min(MAX_SLEEP_MS, Math.max(0, next - this.clock.now()));
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      void this.serial(() => this.runDue()).finally(() => this.schedule());
    }, delay);
  }

  /** Renewals that are due, then the CRL check when due, then what the check made due (a revoked certificate to replace). */
  private async runDue(o: { forceCrl?: boolean; reports?: AttemptReport[] } = {}): Promise<void> {
    let changed = false;
    const attemptDue = async () => {
      for (const j of this.jobs) {
        if (this.stopped && !o.reports) break;
        if (j.nextAt <= this.clock.now()) {
          changed = true;
          const r = await this.attempt(j);
          o.reports?.push(r);
        }
      }
    };
    await attemptDue();
    if (this.cfg.crl && (o.forceCrl || this.nextCrlAt <= this.clock.now())) {
      await this.checkRevocation();
      changed = true;
      await attemptDue();
    }
    if (changed && !o.reports) await this.writeStatus();
  }

  /** What to do about a revoked current certificate: replace it through the bootstrap credential, or stop renewing it. */
  private onRevoked(j: Job, detail: string): void {
    j.revokedSerial = j.serial;
    if (j.spec.reenrollRevoked) {
      j.replaceRevoked = true;
      delete j.stopped;
      j.nextAt = this.clock.now();
      this.log.warn({ cert: j.spec.name, serial: j.serial, detail }, 'certificate revoked: enrolling a replacement through the bootstrap credential');
      return;
    }
    j.replaceRevoked = false;
    j.stopped = `the certificate (serial ${j.serial}) is revoked (${detail}); reenroll_revoked is off, so it is not renewed: replace it, or set reenroll_revoked = true`;
    j.nextAt = Infinity;
    this.log.error({ cert: j.spec.name, serial: j.serial, detail }, 'certificate revoked: renewal stopped (reenroll_revoked is off)');
  }

  private async revocationOf(j: Job, round: CrlRound): Promise<RevocationReport | undefined> {
    const pair = await readCurrentPair(j.store, j.spec.name, this.log);
    if (!pair) return undefined;
    return checkCertificate(j.spec, pair.certPem, round);
  }

  /** Checks every current certificate against its gateway's CRLs, acts on a revoked one, and keeps `[crl] out` fresh. */
  private async checkRevocation(): Promise<void> {
    const crl = this.cfg.crl!;
    const round = new CrlRound(this.clock.now(), (c) => {
      const seen = this.crls.get(crlKey(c));
      return seen && seen.number > c.number ? seen : c;
    });
    let unsure = false;
    for (const j of this.jobs) {
      const report = await this.revocationOf(j, round).catch((e: unknown): RevocationReport => ({ state: 'unknown', checkedAt: new Date(round.now).toISOString(), why: oneLine(e) }));
      if (!report) continue;
      const before = j.revocation;
      j.revocation = report;
      if (report.state === 'unknown') {
        unsure = true;
        // once per change, not at every retry
        if (before?.state !== 'unknown' || before.why !== report.why) this.log.warn({ cert: j.spec.name, why: report.why }, 'revocation status unknown');
      }
      if (report.state === 'revoked' && j.serial !== undefined && report.serial === normalSerial(j.serial) && j.revokedSerial !== j.serial) {
        this.onRevoked(j, `${report.reason} on ${report.revokedAt}, CRL ${report.crl} #${report.crlNumber}`);
      }
    }
    for (const c of await round.verified()) {
      const had = this.crls.get(crlKey(c));
      if (!had || had.number < c.number) this.crls.set(crlKey(c), c);
    }
    if (crl.out) await this.writeCrlOut(crl.out);
    const now = this.clock.now();
    const soonest = Math.min(...[...this.crls.values()].map((c) => c.nextUpdate.getTime()).filter((t) => t > now));
    let wait = Math.min(crl.refreshMs, Number.isFinite(soonest) ? Math.max(MIN_CRL_REFRESH_MS, (soonest - now) / 2) : crl.refreshMs);
    if (unsure) wait = Math.min(wait, CRL_PROBLEM_RETRY_MS);
    this.nextCrlAt = now + wait;
  }

  private async writeCrlOut(file: string): Promise<void> {
    const pem = [...this.crls.values()]
      .sort((a, b) => a.issuerDer.compare(b.issuerDer) || (a.number < b.number ? -1 : a.number > b.number ? 1 : 0))
      .map((c) => toPem('X509 CRL', c.der))
      .join('');
    if (pem === '' || pem === this.crlOutWritten) return;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, pem, 0o644);
      this.crlOutWritten = pem;
      this.log.info({ file, crls: this.crls.size }, 'CRL file written');
    } catch (e) {
      this.log.error({ file, err: oneLine(e) }, 'cannot write the CRL file');
    }
  }

  private async identityPair(name: string): Promise<LoadedPair | undefined> {
    const j = this.jobs.find((x) => x.spec.name === name);
    return j ? readCurrentPair(j.store, name, this.log) : undefined;
  }

  private async attempt(j: Job): Promise<AttemptReport> {
    const now = this.clock.now();
    j.lastAttempt = now;
    const spec = j.spec;
    try {
      const out = await renewOnce(spec, j.store, {
        now: () => this.clock.now(),
        logger: this.log,
        makeClient: this.o.makeClient ?? defaultClientFactory,
        generateKey: this.o.generateKey ?? generateKey,
        identityPair: (n) => this.identityPair(n),
      }, j);
      const v = out.verified;
      j.validity = { notBefore: v.notBefore.getTime(), notAfter: v.notAfter.getTime() };
      j.subject = v.subject;
      j.serial = v.serialHex;
      j.failures = 0;
      j.lastSuccess = this.clock.now();
      delete j.lastError;
      if (j.replaceRevoked) {
        this.log.warn({ cert: spec.name, revoked: j.revokedSerial, serial: v.serialHex }, 'revoked certificate replaced through the bootstrap credential');
        j.replaceRevoked = false;
        delete j.revokedSerial;
        delete j.revocation;
      }
      delete j.pendingSince;
      const next = nextAfterSuccess(this.clock.now(), j.validity, spec.policy, this.rng);
      j.nextAt = next.at;
      this.o.metrics?.attempt(spec.name, 'success');
      this.log.info(
        { cert: spec.name, op: out.op, credential: out.credential, newKey: out.newKey, serial: v.serialHex, notAfter: v.notAfter.toISOString(), next: new Date(j.nextAt).toISOString() },
        'certificate renewed',
      );
      if (next.tooShort) {
        j.lastError = `the certificate's lifetime (${formatDuration(j.validity.notAfter - j.validity.notBefore)}) is shorter than the renewal threshold; renewing at 80% of the lifetime instead`;
        this.log.warn({ cert: spec.name }, j.lastError);
      }
      if (spec.postRenew) await this.postRenew(j);
      return { name: spec.name, ok: true, notAfter: v.notAfter.toISOString() };
    } catch (e) {
      if (e instanceof RevokedByServer && !j.replaceRevoked) {
        this.onRevoked(j, `the server refused its renewal: ${oneLine(e)}`);
        this.o.metrics?.attempt(spec.name, 'failure');
        // allowed: the replacement goes at once, through the bootstrap credential
        if (j.replaceRevoked) return this.attempt(j);
        j.lastError = oneLine(e);
        return { name: spec.name, ok: false, error: j.stopped! };
      }
      j.failures++;
      j.lastError = oneLine(e);
      // still held while the server is briefly unavailable (its queue's Redis restarting)
      if (isEstError(e, 'pending')) j.pendingSince ??= now;
      else if (!isEstError(e, 'unavailable')) delete j.pendingSince;
      const serverSays = isEstError(e, 'pending') || isEstError(e, 'unavailable') ? (e as EstError).retryAfter : undefined;
      j.nextAt = this.clock.now() + retryDelay(this.clock.now(), j.validity, spec.policy, this.rng, serverSays === undefined ? undefined : serverSays * 1000);
      this.o.metrics?.attempt(spec.name, isEstError(e, 'pending') ? 'pending' : 'failure');
      const expired = j.validity !== undefined && j.validity.notAfter <= now;
      this.log.warn(
        { cert: spec.name, err: j.lastError, failures: j.failures, retryAt: new Date(j.nextAt).toISOString(), ...(expired ? { expired: true } : {}) },
        isEstError(e, 'pending') ? 'request pending at the server' : 'renewal failed; keeping the current files',
      );
      return { name: spec.name, ok: false, error: j.lastError };
    }
  }

  private async postRenew(j: Job): Promise<void> {
    const run = this.o.runCommand ?? runShell;
    try {
      await run(j.spec.postRenew!, { ESTGW_CERT_NAME: j.spec.name, ESTGW_CERT_FILE: j.spec.certFile, ESTGW_KEY_FILE: j.spec.keyFile });
    } catch (e) {
      j.lastError = `post-renew command failed: ${oneLine(e)}`;
      this.log.error({ cert: j.spec.name, err: j.lastError }, 'post-renew command failed');
    }
  }

  status(): StatusDoc {
    const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
    const certs = this.jobs.map((j): CertStatus => {
      const s: CertStatus = { name: j.spec.name, certFile: j.spec.certFile, failures: j.failures };
      const put = <K extends keyof CertStatus>(k: K, v: CertStatus[K] | undefined) => {
        if (v !== undefined) s[k] = v;
      };
      put('subject', j.subject);
      put('serial', j.serial);
      put('notBefore', iso(j.validity?.notBefore));
      put('notAfter', iso(j.validity?.notAfter));
      put('nextRenewal', Number.isFinite(j.nextAt) ? iso(j.nextAt) : undefined);
      put('lastAttempt', iso(j.lastAttempt));
      put('lastSuccess', iso(j.lastSuccess));
      put('lastError', j.lastError);
      put('revocation', j.revocation);
      put('stopped', j.stopped);
      put('pendingSince', iso(j.pendingSince));
      return s;
    });
    return { updatedAt: new Date(this.clock.now()).toISOString(), pid: process.pid, certs };
  }

  private async writeStatus(): Promise<void> {
    const doc = this.status();
    this.o.metrics?.update(doc);
    try {
      await writeStatus(this.cfg.statusFile, doc);
    } catch (e) {
      this.log.error({ file: this.cfg.statusFile, err: oneLine(e) }, 'cannot write the status file');
    }
  }
}
