// Policy decides before anything is signed or forwarded (boulder: policy apart from signing).
import type { Context, Next } from 'koa';
import type { EstState } from '../state.js';

export async function applyPolicy(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const { label, identity, csr } = ctx.state;
  // simplereenroll decided in checkReenrollIdentity, against the certificate being renewed
  ctx.state.decision ??= label!.policy.decideEnroll(identity!, csr!, { serverKeygen: ctx.state.op === 'serverkeygen' });
  await next();
}
