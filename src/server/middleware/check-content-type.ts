// RFC 7030 §4.2.1: enrollment bodies are application/pkcs10 (parameters allowed).
import type { Context, Next } from 'koa';
import { EstError } from '../../errors.js';

export async function checkContentType(ctx: Context, next: Next): Promise<void> {
  const type = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase();
  if (type !== 'application/pkcs10') {
    throw new EstError('unsupportedMediaType', `Content-Type must be application/pkcs10, got ${type ? `"${type}"` : 'none'}`);
  }
  await next();
}
