// Generic routes to the parent layer (a container registry's /v2/, say), passed
// through unchanged by http-proxy: what the IoT Edge API proxy module does on
// nested devices, without a second TLS-terminating hop per layer.
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Context, Next } from 'koa';
import httpProxy from 'http-proxy';
import type { ProxyRouteConfig } from '../config/schema.js';
import type { Logger } from '../util/log.js';
import { TEXT_PLAIN } from './error-handler.js';

interface Route {
  prefix: string;
  target: string;
  agent: HttpAgent;
  timeoutMs: number;
}

export interface UpstreamProxy {
  middleware(ctx: Context, next: Next): Promise<void>;
  close(): void;
}

export async function createUpstreamProxy(routes: ProxyRouteConfig[], logger: Logger): Promise<UpstreamProxy> {
  const compiled: Route[] = await Promise.all(
    routes.map(async (r) => {
      const https = r.target.startsWith('https:');
      const agent = https
        ? new HttpsAgent({
            keepAlive: true,
            ...(r.trust ? { ca: await readFile(r.trust, 'utf8') } : {}),
            ...(r.cert && r.key ? { cert: await readFile(r.cert, 'utf8'), key: await readFile(r.key, 'utf8') } : {}),
          })
        : new HttpAgent({ keepAlive: true });
      return { prefix: r.prefix, target: r.target, agent, timeoutMs: r.timeout * 1000 };
    }),
  );
  const proxy = httpProxy.createProxyServer({ xfwd: true, changeOrigin: true, secure: true });
  proxy.on('error', (err, req, res) => {
    logger.warn({ err: err.message, url: req.url }, 'proxied route failed');
    const out = res as import('node:http').ServerResponse;
    if (!('headersSent' in out) || out.headersSent) {
      out.destroy?.();
      return;
    }
    const r = req as typeof req & { estgwDeadline?: number };
    const timedOut = r.estgwDeadline !== undefined && Date.now() >= r.estgwDeadline;
    const body = timedOut ? 'the parent layer did not answer in time\n' : `the parent layer is unreachable: ${err.message}\n`;
    out.writeHead(timedOut ? 504 : 502, { 'Content-Type': TEXT_PLAIN, 'Content-Length': Buffer.byteLength(body), 'Retry-After': '30' });
    out.end(body);
  });
  return {
    async middleware(ctx, next) {
      const route = compiled.find((r) => ctx.path.startsWith(r.prefix));
      if (!route) return next();
      ctx.respond = false; // http-proxy writes the response itself, bytes unchanged
      (ctx.req as typeof ctx.req & { estgwDeadline?: number }).estgwDeadline = Date.now() + route.timeoutMs - 5;
      proxy.web(ctx.req, ctx.res, { target: route.target, agent: route.agent, proxyTimeout: route.timeoutMs });
      logger.debug({ path: ctx.path, target: route.target }, 'proxied');
    },
    close() {
      for (const r of compiled) r.agent.destroy();
      proxy.close();
    },
  };
}
