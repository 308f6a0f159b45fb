// Every EST endpoint's middleware chain, as one table (read top to bottom).
import compose from 'koa-compose';
import type { Context, Middleware, Next } from 'koa';
import { EstError } from '../errors.js';
import { applyPolicy } from './middleware/apply-policy.js';
import { authenticateClient } from './middleware/authenticate-client.js';
import { checkContentType } from './middleware/check-content-type.js';
import { checkPop } from './middleware/check-pop.js';
import { refuseRevokedClient, refuseRevokedRenewal } from './middleware/check-not-revoked.js';
import { checkReenrollIdentity } from './middleware/check-reenroll-identity.js';
import { checkServerKeygenOffered } from './middleware/check-serverkeygen-offered.js';
import { decodeCsr } from './middleware/decode-csr.js';
import { holdForApproval } from './middleware/hold-for-approval.js';
import { readBody } from './middleware/read-body.js';
import { issueCertificate, notImplemented, respondCaCerts, respondCsrAttrs } from './middleware/respond.js';
import type { Services } from './services.js';
import type { EstState, Operation } from './state.js';

interface Route {
  method: 'GET' | 'POST';
  chain: Middleware[];
}

export function routeTable(s: Services): Record<Operation, Route> {
  const authenticate = authenticateClient(s);
  const notRevoked = refuseRevokedClient(s);
  const body = readBody(s.bodyLimit);
  const hold = holdForApproval(s);
  return {
    // §4.1: no authentication, so that anyone can bootstrap trust
    cacerts: { method: 'GET', chain: [respondCaCerts(s)] },
    // §4.5
    csrattrs: { method: 'GET', chain: [respondCsrAttrs] },
    // §4.2.1
    simpleenroll: { method: 'POST', chain: [checkContentType, authenticate, notRevoked, body, decodeCsr, checkPop, applyPolicy, hold, issueCertificate('simpleenroll')] },
    // §4.2.2
    simplereenroll: { method: 'POST', chain: [checkContentType, authenticate, notRevoked, body, decodeCsr, checkReenrollIdentity, refuseRevokedRenewal(s), checkPop, hold, issueCertificate('simplereenroll')] },
    // §4.4; a forwarding label offers it only with forward_serverkeygen
    serverkeygen: { method: 'POST', chain: [checkServerKeygenOffered, checkContentType, authenticate, notRevoked, body, decodeCsr, checkPop, applyPolicy, hold, issueCertificate('serverkeygen')] },
    // §4.3: optional; answered 501
    fullcmc: { method: 'POST', chain: [notImplemented] },
  };
}

const PREFIX = '/.well-known/est/';

/** Resolves `/.well-known/est/[label/]op` to its chain; 404 and 405 as RFC 7030 and RFC 9110 say. */
export function estDispatcher(s: Services) {
  const table = routeTable(s);
  const chains = new Map(Object.entries(table).map(([op, r]) => [op, compose(r.chain)]));
  return async function dispatchEst(ctx: Context & { state: EstState }, next: Next): Promise<void> {
    if (!ctx.path.startsWith(PREFIX)) return next();
    const parts = ctx.path.slice(PREFIX.length).split('/');
    if (parts.length > 2 || parts.some((p) => p === '')) throw new EstError('notFound', 'not an EST path: use /.well-known/est/[label/]operation');
    const op = parts.at(-1)!;
    let labelName = 'default';
    if (parts.length === 2) {
      try {
        labelName = decodeURIComponent(parts[0]!);
      } catch {
        throw new EstError('notFound', 'malformed percent-escape in the CA label');
      }
    }
    const route = Object.hasOwn(table, op) ? table[op as Operation] : undefined;
    if (!route) throw new EstError('notFound', `unknown EST operation "${op}"`);
    const label = s.labels.get(labelName);
    if (!label || (parts.length === 2 && labelName === 'default')) throw new EstError('notFound', `unknown CA label "${labelName}"`);
    ctx.state.op = op as Operation;
    ctx.state.label = label;
    ctx.state.socket = ctx.req.socket as EstState['socket'];
    const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(ctx.method)) throw new EstError('methodNotAllowed', `${op} takes ${route.method}`, { allow: allowed });
    await chains.get(op)!(ctx, next);
  };
}
