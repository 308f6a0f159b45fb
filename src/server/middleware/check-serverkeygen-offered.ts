// RFC 7030 §4.4: serverkeygen is optional. A forwarding label offers it only
// when configured to, since the key generated above would pass unencrypted
// through this layer and every layer between (§4.4.2 key encryption is not built).
import type { Context, Next } from 'koa';
import { EstError } from '../../errors.js';
import type { EstState } from '../state.js';

/**
 * 501, not 403: the label does not offer the operation to anyone (RFC 9110
 * §15.6.2, as fullcmc here), whereas 403 would say this client lacks a right
 * that other credentials could have. Checked first: it depends on no client.
 */
export async function checkServerKeygenOffered(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const label = ctx.state.label!;
  if (label.cfg.mode === 'forward' && !label.cfg.forward_serverkeygen) {
    throw new EstError('notImplemented', `label "${label.name}" forwards to its parent and does not offer serverkeygen: the generated key would pass through every layer (forward_serverkeygen = false)`);
  }
  await next();
}
