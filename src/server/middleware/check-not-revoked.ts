// A certificate this layer revoked never speaks for anyone here again: not as a
// client or RA on any label, not as the certificate being renewed (in TLS or in
// an RA's Client-Cert), so it can neither renew nor enroll another one.
import type { Context, Next } from 'koa';
import type { Services } from '../services.js';
import type { EstState } from '../state.js';

type Ctx = Context & { state: EstState };

/** After authentication: the client certificate that authenticated. */
export function refuseRevokedClient(s: Services) {
  return async function notRevokedClient(ctx: Ctx, next: Next): Promise<void> {
    const { identity, peer } = ctx.state;
    if (s.ledger && identity?.kind === 'cert' && peer) s.ledger.assertNotRevoked(peer.der, identity.role === 'ra' ? 'RA certificate' : 'client certificate');
    await next();
  };
}

/** After checkReenrollIdentity: the certificate being renewed, relayed or in TLS (on a Basic-only label it authenticated nothing). */
export function refuseRevokedRenewal(s: Services) {
  return async function notRevokedRenewal(ctx: Ctx, next: Next): Promise<void> {
    const { currentCert } = ctx.state;
    if (s.ledger && currentCert) s.ledger.assertNotRevoked(currentCert, 'certificate being renewed');
    await next();
  };
}
