// Manual approval (issue 12): a request that passed authentication, PoP and
// policy on a label with approval = "manual" is held (202 + Retry-After) until
// an operator decides with `estgw requests`; the client's repeated request then
// gets the certificate (once) or a 403 with the reason.
import { createHash, randomBytes } from 'node:crypto';
import { EstError, forbidden } from '../errors.js';
import type { Config, LabelConfig } from '../config/schema.js';
import type { Csr } from '../est/csr.js';
import { formatName, generalNamesKey } from '../est/name.js';
import { describeKey } from '../est/spki.js';
import { type Identity, IdentityPattern, identityString } from '../policy/identity.js';
import { parseDurationMs } from '../util/durations.js';
import type { Logger } from '../util/log.js';
import { runHook } from './hook.js';
import { LmdbApprovalStore, approvalsPath } from './lmdb-store.js';
import { RedisApprovalStore } from './redis-store.js';
import type { ApprovalStore, HeldRequest } from './store.js';

export type ApprovalConfig = Config['approval'];

/** The Redis store when the layer has Redis (shared by its replicas), else DATA_DIR/approvals. */
export function openApprovalStore(cfg: Pick<Config, 'redis' | 'server'>): ApprovalStore {
  return cfg.redis.url ? new RedisApprovalStore({ url: cfg.redis.url, keyPrefix: cfg.redis.key_prefix }) : new LmdbApprovalStore(approvalsPath(cfg.server.data_dir));
}

/** Whether any label or grant of the layer holds requests. */
export const usesManualApproval = (labels: Record<string, LabelConfig>): boolean =>
  Object.values(labels).some((l) => l.approval === 'manual' || l.grants.some((g) => g.approval === 'manual'));

/**
 * What the client's repeated request finds its entry by: the label, the kind of
 * request, the public key and the names. Not the CSR's bytes: a client signs its
 * CSR anew for each attempt (with PoP linking it must: each connection has its
 * own tls-unique), and an RA or a library may re-encode it.
 */
export function requestKey(label: string, op: string, csr: Csr): string {
  const kind = op === 'serverkeygen' ? 'serverkeygen' : 'enroll';
  return createHash('sha256').update(JSON.stringify([label, kind, csr.spki.toString('base64'), formatName(csr.subject), generalNamesKey(csr.subjectAltNames)])).digest('hex');
}

export const newRequestId = (): string => randomBytes(16).toString('hex');

/**
 * How long a claim of an approved request stands: far longer than issuing takes
 * (a parent's timeouts included). Only a replica killed between its claim and
 * its answer leaves one this old; its certificate never left the process.
 */
const CLAIM_LEASE_MS = 10 * 60_000;

export interface HoldContext {
  label: { name: string; cfg: LabelConfig };
  op: string;
  csr: Csr;
  identity: Identity;
  source: string;
  /** simplereenroll of a certificate this label issued and checked valid (not an RA's vouched one). */
  renewal: boolean;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export class ApprovalQueue {
  readonly expiryMs: number;
  readonly keepMs: number;
  readonly retryAfter: number;
  private readonly exemptIds = new Map<string, IdentityPattern[]>();

  constructor(
    readonly store: ApprovalStore,
    private readonly cfg: ApprovalConfig,
    private readonly logger: Logger,
  ) {
    this.expiryMs = parseDurationMs(cfg.expiry);
    this.keepMs = parseDurationMs(cfg.keep_decided);
    this.retryAfter = cfg.retry_after;
  }

  /** Exemptions of a label: renewals, registration authorities, identity patterns. */
  exempt(h: Pick<HoldContext, 'label' | 'identity' | 'renewal'>): boolean {
    const l = h.label.cfg;
    if (h.renewal && l.approval_exempt_renewals) return true;
    if (h.identity.role === 'ra' && l.approval_exempt_ras) return true;
    let patterns = this.exemptIds.get(h.label.name);
    if (!patterns) this.exemptIds.set(h.label.name, (patterns = l.approval_exempt_identities.map((p) => new IdentityPattern(p))));
    return patterns.some((p) => p.match(h.identity) !== undefined);
  }

  /**
   * The request as the queue sees it: throws `pending` (202) while it waits,
   * `forbidden` once rejected, `unavailable` when the queue is full; returns
   * the entry once approved, claimed by this caller alone (state issuing).
   */
  async admit(h: HoldContext, now = Date.now()): Promise<HeldRequest> {
    const key = requestKey(h.label.name, h.op, h.csr);
    let r = await this.store.byKey(key);
    /** The entry a new one may take the key from: expired, issued, or past its removal. */
    const previous = r?.id;
    // past its removal (the embedded store purges on its sweep): as good as gone
    if (r && r.removeAt <= now) r = undefined;
    if (r?.state === 'pending' && r.expiresAt <= now) r = (await this.expire(r, now)) ?? (await this.store.byKey(key));
    // a claim older than its lease was a replica that died before it answered: the certificate never left, the approval stands
    if (r?.state === 'issuing' && r.claimedAt !== undefined && r.claimedAt + CLAIM_LEASE_MS <= now) {
      r = (await this.store.transition(r.id, ['issuing'], { state: 'approved', removeAt: now + this.expiryMs })) ?? r;
    }
    switch (r?.state) {
      case 'pending':
      case 'issuing': // another replica issues it right now: this poll learns the outcome next time
        await this.store.poll(r.id, now);
        throw this.pending(r);
      case 'approved': {
        const claimed = await this.store.transition(r.id, ['approved'], { state: 'issuing', claimedAt: now, removeAt: now + this.keepMs });
        if (!claimed) throw this.pending(r);
        return claimed;
      }
      case 'rejected':
        await this.store.poll(r.id, now);
        throw forbidden(`the request was rejected by an operator: ${r.reason ?? 'no reason given'}`);
      default:
        // nothing yet, or expired or already issued: a request of its own
        throw this.pending(await this.queue(h, key, now, previous));
    }
  }

  private pending(r: HeldRequest): EstError {
    return new EstError('pending', `request ${r.id} is held for approval by an operator on label "${r.label}"; retry after ${this.retryAfter} s`, { retryAfter: this.retryAfter });
  }

  private async queue(h: HoldContext, key: string, now: number, replacing: string | undefined): Promise<HeldRequest> {
    this.refuseWhenFull(h, await this.store.list(), now);
    const csr = h.csr;
    const entry: HeldRequest = {
      id: newRequestId(),
      key,
      label: h.label.name,
      op: h.op,
      state: 'pending',
      csr: csr.der.toString('base64'),
      csrSha256: sha256(csr.der),
      subject: formatName(csr.subject),
      sans: csr.subjectAltNames.map((n) => `${n.type}:${n.value}`),
      keyType: describeKey(csr.key),
      keySha256: sha256(csr.spki),
      identity: identityString(h.identity),
      ...(h.identity.role === 'ra' && h.identity.certSubject ? { ra: [h.identity.certSubject, ...(h.identity.issuer ? [h.identity.issuer] : [])] } : {}),
      source: h.source,
      firstSeen: now,
      lastSeen: now,
      polls: 1,
      expiresAt: now + this.expiryMs,
      removeAt: now + this.expiryMs + this.keepMs,
    };
    const stored = await this.store.add(entry, replacing);
    if (stored.id !== entry.id) {
      await this.store.poll(stored.id, now);
      return stored;
    }
    this.logger.info({ id: entry.id, label: entry.label, op: entry.op, identity: entry.identity, source: entry.source, subject: entry.subject, sans: entry.sans }, 'approval request queued');
    if (this.cfg.hook) runHook(this.cfg.hook, this.cfg.hook_timeout * 1000, entry, this.logger);
    return entry;
  }

  /**
   * The caps, so that a device with the shared bootstrap password cannot make
   * the operator's list useless: per client address and identity (not for
   * registration authorities, whose whole subtree shares both), per label.
   * A shared bootstrap identity is one identity: an address with nothing
   * waiting may always queue one request (within the label's cap), so that a
   * few addresses filling the identity's cap do not lock every device out.
   */
  private refuseWhenFull(h: HoldContext, all: HeldRequest[], now: number): void {
    const waiting = all.filter((r) => r.state === 'pending' && r.expiresAt > now);
    const full = (n: number, max: number, what: string) => {
      if (n >= max) throw new EstError('unavailable', `too many requests waiting for approval ${what} (${max}); retry later`, { retryAfter: this.retryAfter });
    };
    full(waiting.filter((r) => r.label === h.label.name).length, this.cfg.max_pending_per_label, `on label "${h.label.name}"`);
    if (h.identity.role === 'ra') return;
    const fromHere = waiting.filter((r) => r.source === h.source).length;
    full(fromHere, this.cfg.max_pending_per_source, 'from this address');
    const id = identityString(h.identity);
    if (fromHere > 0) full(waiting.filter((r) => r.identity === id).length, this.cfg.max_pending_per_identity, 'for this identity');
  }

  /** Issuing after the claim failed (parent down, CA error): the approval stands for the next poll. */
  async release(r: HeldRequest): Promise<void> {
    await this.store.transition(r.id, ['issuing'], { state: 'approved', removeAt: Date.now() + this.expiryMs });
  }

  /** Issued: the entry is consumed; a further request with the same key is a new one. */
  async consumed(r: HeldRequest, serial: string | undefined): Promise<void> {
    await this.store.transition(r.id, ['issuing'], { state: 'issued', removeAt: Date.now() + this.keepMs });
    this.logger.info({ id: r.id, label: r.label, identity: r.identity, subject: r.subject, serial, approvedBy: r.decidedBy }, 'approved request issued');
  }

  /** A pending entry past its expiry becomes `expired` (once, whichever replica sees it first). */
  private async expire(r: HeldRequest, now: number): Promise<HeldRequest | undefined> {
    const done = await this.store.transition(r.id, ['pending'], { state: 'expired', decidedBy: 'expiry', decidedAt: now, removeAt: now + this.keepMs });
    if (done) this.logger.info({ id: r.id, label: r.label, identity: r.identity, source: r.source, subject: r.subject, firstSeen: new Date(r.firstSeen).toISOString(), polls: r.polls }, 'approval request expired');
    return done;
  }

  /** Records expiries nobody polled for and forgets what is past keep_decided. */
  async sweep(now = Date.now()): Promise<void> {
    for (const r of await this.store.list()) if (r.state === 'pending' && r.expiresAt <= now) await this.expire(r, now);
    await this.store.purge(now);
  }

  /** Pending requests by label: how many, and since when the oldest waits. */
  async pendingByLabel(now = Date.now()): Promise<Map<string, { count: number; oldest: number }>> {
    const out = new Map<string, { count: number; oldest: number }>();
    for (const r of await this.store.list()) {
      if (r.state !== 'pending' || r.expiresAt <= now) continue;
      const s = out.get(r.label) ?? { count: 0, oldest: r.firstSeen };
      out.set(r.label, { count: s.count + 1, oldest: Math.min(s.oldest, r.firstSeen) });
    }
    return out;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
