// Reads the request body with a size limit; chunked bodies (globalsign) included.
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { EstError } from '../../errors.js';
import type { EstState } from '../state.js';

export function readBody(limit: number) {
  return async function readRequestBody(ctx: Context & { state: EstState }, next: Next): Promise<void> {
    const declared = ctx.get('Content-Length');
    if (declared && Number(declared) > limit) throw new EstError('tooLarge', `request body exceeds ${limit} bytes`);
    ctx.state.body = await getRawBody(ctx.req, { limit, ...(declared ? { length: declared } : {}) });
    await next();
  };
}
