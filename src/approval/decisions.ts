// An operator's decisions on held requests (`estgw requests approve|reject`):
// each one state change in the shared store, so a decision and a replica's
// expiry or claim never both win.
import type { ApprovalStore, HeldRequest } from './store.js';

export class DecisionError extends Error {}

const ID_PREFIX = /^[0-9a-f]{8,32}$/;
/** A reason is one line an operator typed: printable, bounded. */
const REASON = /^[^\p{Cc}]{1,200}$/u;

/** The entry an operator names by its id or a unique prefix of at least 8 characters. */
export async function findRequest(store: ApprovalStore, given: string): Promise<HeldRequest> {
  const id = given.toLowerCase();
  if (!ID_PREFIX.test(id)) throw new DecisionError(`"${JSON.stringify(given).slice(1, -1)}" is not a request id (32 hex digits, or at least the first 8)`);
  const exact = id.length === 32 ? await store.get(id) : undefined;
  if (exact) return exact;
  const found = (await store.list()).filter((r) => r.id.startsWith(id));
  if (found.length === 1) return found[0]!;
  throw new DecisionError(found.length ? `request id ${id} is ambiguous: ${found.length} requests start with it` : `no request ${id} (decided long ago, expired, or never queued)`);
}

const notPending = (r: HeldRequest, now: number) =>
  r.state === 'pending' && r.expiresAt <= now ? 'expired' : r.state === 'pending' ? undefined : `${r.state}${r.decidedBy ? ` by ${r.decidedBy}` : ''}`;

export async function approveRequest(
  store: ApprovalStore,
  r: HeldRequest,
  o: { by: string; certDays?: number; validForMs: number; now?: number },
): Promise<HeldRequest> {
  const now = o.now ?? Date.now();
  const why = notPending(r, now);
  if (why) throw new DecisionError(`request ${r.id} cannot be approved: it is ${why}`);
  const done = await store.transition(r.id, ['pending'], {
    state: 'approved', decidedBy: o.by, decidedAt: now, removeAt: now + o.validForMs, ...(o.certDays !== undefined ? { certDays: o.certDays } : {}),
  });
  if (!done) throw new DecisionError(`request ${r.id} changed meanwhile (decided or expired); look again with estgw requests show`);
  return done;
}

export async function rejectRequest(store: ApprovalStore, r: HeldRequest, o: { by: string; reason: string; keepMs: number; now?: number }): Promise<HeldRequest> {
  if (!REASON.test(o.reason)) throw new DecisionError('--reason takes one line of 1 to 200 printable characters');
  const now = o.now ?? Date.now();
  if (r.state !== 'pending' && r.state !== 'approved') throw new DecisionError(`request ${r.id} cannot be rejected: it is ${r.state}`);
  const done = await store.transition(r.id, ['pending', 'approved'], { state: 'rejected', decidedBy: o.by, decidedAt: now, reason: o.reason, removeAt: now + o.keepMs });
  if (!done) throw new DecisionError(`request ${r.id} changed meanwhile (issued, decided or expired); look again with estgw requests show`);
  return done;
}

export const validBy = (by: string): boolean => REASON.test(by) && by.length <= 100;
export const validReason = (reason: string): boolean => REASON.test(reason);
