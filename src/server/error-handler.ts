// The only place internal error kinds become HTTP (RFC 8951 §5: text/plain reasons).
import type { Context, Next } from 'koa';
import { EstError, type EstErrorKind } from '../errors.js';
import { escapeUnshowable } from '../est/name-syntax.js';
import type { EstState } from './state.js';

const STATUS: Record<EstErrorKind, number> = {
  malformed: 400,
  badSignature: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  methodNotAllowed: 405,
  timeout: 408,
  tooLarge: 413,
  unsupportedMediaType: 415,
  pending: 202,
  internal: 500,
  notImplemented: 501,
  badGateway: 502,
  unavailable: 503,
  upstreamTimeout: 504,
};

export const TEXT_PLAIN = 'text/plain; charset=utf-8';

const MAX_REASON = 300;
/** One short line, whatever a reason quotes: control characters escaped, long ones cut (body and audit line alike). */
export function reasonLine(message: string): string {
  const line = escapeUnshowable(message);
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON)}…` : line;
}

/** Turns anything thrown below into a status and a one-line reason; never a stack trace. */
export function errorHandler(realm: string) {
  return async function handleErrors(ctx: Context & { state: EstState }, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      const e = toEstError(err);
      ctx.state.error = e;
      if (e.kind === 'internal') ctx.state.internalError = err;
      ctx.set('Content-Type', TEXT_PLAIN);
      ctx.status = STATUS[e.kind];
      ctx.body = `${reasonLine(e.message)}\n`;
      if (e.kind === 'unauthorized') ctx.set('WWW-Authenticate', `Basic realm="${realm}"`);
      if (e.retryAfter !== undefined) ctx.set('Retry-After', String(Math.max(0, Math.round(e.retryAfter))));
      if (e.allow) ctx.set('Allow', e.allow.join(', '));
      // an unread oversized body must not be drained on a kept-alive connection
      if (e.kind === 'tooLarge' || e.kind === 'timeout') ctx.set('Connection', 'close');
    }
  };
}

function toEstError(err: unknown): EstError {
  if (err instanceof EstError) return err;
  const http = err as { status?: number; type?: string; expose?: boolean; message?: string };
  // raw-body and koa's own errors carry a status
  if (http && typeof http.status === 'number') {
    if (http.type === 'entity.too.large' || http.status === 413) return new EstError('tooLarge', 'request body is too large');
    if (http.type === 'request.aborted') return new EstError('malformed', 'request aborted');
    if (http.type === 'request.size.invalid') return new EstError('malformed', 'request body does not match Content-Length');
    if (http.status === 408) return new EstError('timeout', 'request timed out');
    if (http.status >= 400 && http.status < 500) return new EstError('malformed', http.expose && http.message ? http.message : 'bad request');
  }
  return new EstError('internal', 'internal error', { cause: err });
}
