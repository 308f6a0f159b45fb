// One internal error vocabulary for every layer (codec, policy, issuer, client).
// Only src/server/error-handler.ts maps these kinds to HTTP; nothing below the
// web front end knows about status codes.

export type EstErrorKind =
  | 'malformed'            // the request or a peer's answer cannot be parsed
  | 'badSignature'         // a CSR or certificate signature does not verify
  | 'unauthorized'         // no or wrong credentials
  | 'forbidden'            // authenticated, but policy says no
  | 'notFound'             // unknown label or operation
  | 'methodNotAllowed'
  | 'unsupportedMediaType'
  | 'tooLarge'
  | 'timeout'              // the client was too slow
  | 'pending'              // accepted, retry later (202 + Retry-After)
  | 'unavailable'          // a dependency (parent, CA) cannot serve right now
  | 'upstreamTimeout'      // the parent did not answer in time
  | 'badGateway'           // the parent answered something unusable
  | 'notImplemented'
  | 'internal';

export interface EstErrorOptions {
  /** Seconds, for `pending` and `unavailable`. */
  retryAfter?: number;
  /** For `methodNotAllowed`. */
  allow?: string[];
  cause?: unknown;
}

export class EstError extends Error {
  readonly kind: EstErrorKind;
  readonly retryAfter: number | undefined;
  readonly allow: string[] | undefined;

  constructor(kind: EstErrorKind, message: string, options: EstErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EstError';
    this.kind = kind;
    this.retryAfter = options.retryAfter;
    this.allow = options.allow;
  }
}

export const malformed = (msg: string, cause?: unknown) => new EstError('malformed', msg, { cause });
export const forbidden = (msg: string) => new EstError('forbidden', msg);
export const unauthorized = (msg: string) => new EstError('unauthorized', msg);

export function isEstError(e: unknown, kind?: EstErrorKind): e is EstError {
  return e instanceof EstError && (kind === undefined || e.kind === kind);
}
