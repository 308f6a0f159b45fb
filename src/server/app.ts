// The Koa application: audit log outermost, then error mapping, then routes.
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import { EstError } from '../errors.js';
import { formatName } from '../est/name.js';
import { identityString } from '../policy/policy.js';
import { TEXT_PLAIN, errorHandler, reasonLine } from './error-handler.js';
import { answerCrl } from './crl.js';
import { answerOcsp, isOcspPath } from './ocsp.js';
import { estDispatcher } from './routes.js';
import type { Services } from './services.js';
import type { EstState } from './state.js';

type Ctx = Context & { state: EstState };

/** One structured line per EST request: who asked for what, and what came of it. Never credentials. */
function auditLog(s: Services) {
  return async function audit(ctx: Ctx, next: Next): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const st = ctx.state;
      if (st.internalError) s.logger.error({ err: st.internalError, op: st.op, path: ctx.path }, 'internal error');
      // every EST request, also the ones refused before routing (404 probes)
      if (st.op || ctx.path.startsWith('/.well-known/est')) {
        const line: Record<string, unknown> = {
          op: st.op ?? null,
          label: st.label?.name,
          status: ctx.status,
          // pending: held for approval, here or at a parent (202), neither refused nor failed
          outcome: st.issued ? 'issued' : st.error?.kind === 'pending' ? 'pending' : st.error ? (ctx.status < 500 ? 'rejected' : 'failed') : 'ok',
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          remote: ctx.request.ip,
          tls: st.socket?.getProtocol?.() ?? undefined,
        };
        if (st.identity) line.identity = identityString(st.identity);
        if (st.identity?.user && st.identity.kind === 'cert') line.user = st.identity.user;
        if (st.identity?.role === 'ra') line.ra = true;
        if (st.identity?.issuer) line.clientIssuer = st.identity.issuer;
        if (st.csr) line.subject = formatName(st.csr.subject);
        if (st.issued) {
          line.serial = st.issued.serialHex;
          line.notAfter = st.issued.notAfter.toISOString();
          line.issuer = st.issued.issuedBy;
          if (st.issued.islanded) line.islanded = true;
        }
        if (st.reenrollKind) line.reenroll = st.reenrollKind;
        if (s.metrics) {
          s.metrics.request(st.label?.name, st.op ?? null, ctx.status, (line.ms as number) / 1000);
          if (st.issued && st.label) s.metrics.issuedCertificate(st.label.name, st.issued.islanded ? 'islanded' : st.label.cfg.mode === 'forward' ? 'forwarded' : 'local');
        }
        if (!st.op) line.path = ctx.path.slice(0, 200);
        if (st.error) line.reason = reasonLine(st.error.message);
        s.logger.info(line, 'est');
      }
    }
  };
}

/** RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node lets it through so we can say why). */
async function requireHost(ctx: Ctx, next: Next): Promise<void> {
  if (ctx.req.httpVersion === '1.1' && ctx.get('Host') === '') throw new EstError('malformed', 'HTTP/1.1 requests need a Host header (RFC 9112 §3.2)');
  await next();
}

export function createApp(s: Services): Koa {
  const app = new Koa({ proxy: false });
  app.silent = true; // errorHandler and auditLog report everything
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = 'ok\n';
    ctx.set('Content-Type', TEXT_PLAIN);
  });
  router.get('/readyz', async (ctx) => {
    const report = await s.readiness();
    ctx.status = report.ready ? 200 : 503;
    ctx.body = report;
  });
  app.use(auditLog(s));
  app.use(errorHandler(s.realm));
  app.use(async function serveLocalCrl(ctx: Ctx, next: Next): Promise<void> {
    const a = ctx.method === 'GET' || ctx.method === 'HEAD' ? answerCrl(s.crls, ctx.path, s.logger) : undefined;
    if (!a) return next();
    ctx.set('Content-Type', a.type);
    ctx.status = a.status;
    ctx.body = a.body;
  });
  app.use(async function serveOcsp(ctx: Ctx, next: Next): Promise<void> {
    const a = s.ocsp && isOcspPath(ctx.url) ? await answerOcsp(s.ocsp, ctx.req, ctx.url) : undefined;
    if (!a) return next();
    ctx.set('Content-Type', a.type);
    for (const [k, v] of Object.entries(a.headers ?? {})) ctx.set(k, v);
    ctx.status = a.status;
    ctx.body = a.body;
  });
  if (s.proxy) app.use(s.proxy.middleware);
  app.use(requireHost);
  app.use(estDispatcher(s));
  app.use(router.routes());
  app.use(async (ctx: Ctx) => {
    if (ctx.status === 404 && ctx.body === undefined) throw new EstError('notFound', `no such resource: ${ctx.path}`);
  });
  return app;
}
