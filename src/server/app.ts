// The Koa application: audit log outermost, then error mapping, then routes.
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import { EstError } from '../errors.js';
import { formatName } from '../est/name.js';
import { identityString } from '../policy/policy.js';
import { TEXT_PLAIN, errorHandler } from './error-handler.js';
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
      if (st.op) {
        const line: Record<string, unknown> = {
          op: st.op,
          label: st.label?.name,
          status: ctx.status,
          outcome: st.issued ? 'issued' : st.error ? (ctx.status < 500 ? 'rejected' : 'failed') : 'ok',
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          remote: ctx.request.ip,
          tls: st.socket?.getProtocol?.() ?? undefined,
        };
        if (st.identity) line.identity = identityString(st.identity);
        if (st.identity?.user && st.identity.kind === 'cert') line.user = st.identity.user;
        if (st.identity?.ra) line.ra = true;
        if (st.csr) line.subject = formatName(st.csr.subject);
        if (st.issued) {
          line.serial = st.issued.serialHex;
          line.notAfter = st.issued.notAfter.toISOString();
          line.issuer = st.issued.issuedBy;
          if (st.issued.islanded) line.islanded = true;
        }
        if (st.reenrollKind) line.reenroll = st.reenrollKind;
        if (st.error) line.reason = st.error.message;
        if (st.internalError) s.logger.error({ err: st.internalError, op: st.op }, 'internal error');
        s.logger.info(line, 'est');
      }
    }
  };
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
    const labels: Record<string, string> = {};
    let ready = true;
    for (const label of s.labels.values()) {
      try {
        await s.caChain(label);
        labels[label.name] = 'ok';
      } catch (e) {
        ready = false;
        labels[label.name] = e instanceof Error ? e.message : 'unavailable';
      }
    }
    ctx.status = ready ? 200 : 503;
    ctx.body = { ready, labels };
  });
  app.use(auditLog(s));
  app.use(errorHandler(s.realm));
  app.use(estDispatcher(s));
  app.use(router.routes());
  app.use(async (ctx: Ctx) => {
    if (ctx.status === 404 && ctx.body === undefined) throw new EstError('notFound', `no such resource: ${ctx.path}`);
  });
  return app;
}
