// Manual approval (src/approval): the last step before issuance, so only a
// request that would otherwise be issued (authenticated, PoP, policy) is held.
// Held: 202 + Retry-After; approved: this poll alone issues, through the label's
// issuer as any other request (the ledger records it, a parent sees an RA).
import type { Context, Next } from 'koa';
import { EstError, isEstError } from '../../errors.js';
import type { Services } from '../services.js';
import type { EstState } from '../state.js';

export function holdForApproval(s: Services) {
  return async function hold(ctx: Context & { state: EstState }, next: Next): Promise<void> {
    const st = ctx.state;
    const queue = s.approvals;
    if (!queue || st.decision?.approval !== 'manual') return next();
    const h = {
      label: st.label!,
      op: st.op!,
      csr: st.csr!,
      identity: st.identity!,
      source: ctx.request.ip,
      renewal: st.reenrollKind === 'renew' || st.reenrollKind === 'rekey',
    };
    if (queue.exempt(h)) return next();
    const claimed = await queue.admit(h).catch((e: unknown) => {
      if (isEstError(e)) throw e;
      // Redis down: the device retries as it would after a 202; the held entries wait in Redis
      s.logger.warn({ err: e }, 'the approval queue is unreachable');
      throw new EstError('unavailable', 'the approval queue is unreachable; retry later', { retryAfter: s.approvals!.retryAfter });
    });
    // the operator may shorten the validity, never lengthen it
    if (claimed.certDays !== undefined) st.decision = { ...st.decision, validityDays: Math.min(st.decision.validityDays, claimed.certDays) };
    try {
      await next();
    } catch (e) {
      await queue.release(claimed).catch((err: unknown) => s.logger.error({ err, id: claimed.id }, 'releasing an approved request failed'));
      throw e;
    }
    // issued: the answer stands even if the queue cannot be told (the entry stays `issuing`, never issued again)
    await queue.consumed(claimed, st.issued?.serialHex).catch((err: unknown) => s.logger.error({ err, id: claimed.id }, 'marking an approved request issued failed'));
  };
}
