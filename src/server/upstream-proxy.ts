// Generic routes to the parent layer (a container registry's /v2/, say), passed
// through by http-proxy: what the IoT Edge API proxy module does on nested
// devices, without a second TLS-terminating hop per layer. A route admits only
// the identities it names, and only paths that stay under its prefix: the
// target sees this gateway's certificate, so it must not lend it to anyone else.
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Context, Next } from 'koa';
import httpProxy from 'http-proxy';
import type { PasswordVerifier } from '../auth/password.js';
import type { ProxyRouteConfig } from '../config/schema.js';
import { forbidden, malformed, unauthorized } from '../errors.js';
import { fromPemAll } from '../est/base64.js';
import { type Identity, IdentityPattern, identityString } from '../policy/identity.js';
import type { Logger } from '../util/log.js';
import { TEXT_PLAIN } from './error-handler.js';
import { parseBasic } from './middleware/authenticate-client.js';
import { chainsTo, peerCertificate } from './peer-certificate.js';
import type { PeerCertificate } from './state.js';

interface Route {
  prefix: string;
  target: string;
  agent: HttpAgent;
  timeoutMs: number;
  identities: IdentityPattern[];
  anchors: Buffer[];
  passAuthorization: boolean;
}

export interface UpstreamProxy {
  middleware(ctx: Context, next: Next): Promise<void>;
  /** Every route's client_trust: the TLS server must accept (and name) them too. */
  clientAnchors: Buffer[];
  close(): void;
}

export interface UpstreamProxyOptions {
  logger: Logger;
  /** The same [users] as EST labels authenticate against. */
  passwords: PasswordVerifier;
  /** Throws when the client certificate's chain is revoked (the gateway's RevocationAuthority); key memoises per connection. */
  checkRevoked?: (peer: PeerCertificate, key: string, anchors: Buffer[]) => void;
}

/**
 * Request headers that say who the caller is or where it came from. Only this
 * gateway speaks about its callers upstream (X-Forwarded-* are set afresh by
 * http-proxy); a target that trusts its peer, the gateway, would otherwise
 * believe whatever a caller wrote in them.
 */
const CALLER_ASSERTIONS = [
  /^forwarded$/, /^x-forwarded-/, /^x-real-ip$/, /^proxy-authorization$/,
  /^(x-)?(ssl-)?client-(cert|cert-chain|dn|s-dn|i-dn|verify|san)$/, /^x-ssl-client-/, /^x-arr-clientcert$/,
  /^(x-)?remote-user$/, /^x-auth-request-/,
];

function stripCallerAssertions(headers: IncomingHttpHeaders, passAuthorization: boolean): void {
  for (const name of Object.keys(headers)) {
    if (CALLER_ASSERTIONS.some((re) => re.test(name)) || (name === 'authorization' && !passAuthorization)) delete headers[name];
  }
}

/** Splits a request target (origin or absolute form) into its raw path and `?query`. */
function splitTarget(url: string): { path: string; query: string } {
  const origin = url.startsWith('/') ? url : url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  const q = origin.indexOf('?');
  return q < 0 ? { path: origin, query: '' } : { path: origin.slice(0, q), query: origin.slice(q) };
}

/** Characters a path segment may carry unescaped (RFC 3986 pchar). */
const NOT_PCHAR = /[^A-Za-z0-9\-._~!$&'()*+,;=:@]/gu;

/**
 * The path the target gets: percent-escapes decoded once, checked, and encoded
 * again, so no reading of it by the target (decoding once more, treating `\`
 * or `..;` as separators) can climb out of the prefix.
 */
export function confinePath(rawPath: string, prefix: string): string {
  if (/%(2f|5c)/i.test(rawPath)) throw malformed('encoded / or \\ in the path');
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw malformed('malformed percent-escape in the path');
  }
  if (path.includes('\0') || path.includes('\\')) throw malformed('NUL or \\ in the path');
  const segments = path.split('/');
  // `..;x` is `..` to servlet containers
  if (segments.some((s) => /^\.\.?(;|$)/.test(s))) throw malformed('. and .. segments are not allowed in the path');
  if (!path.startsWith(prefix)) throw malformed(`the path leaves ${prefix}`);
  return segments.map((s) => s.replace(NOT_PCHAR, (c) => encodeURIComponent(c))).join('/');
}

export async function createUpstreamProxy(routes: ProxyRouteConfig[], o: UpstreamProxyOptions): Promise<UpstreamProxy> {
  const { logger, passwords } = o;
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
      const anchors = (await Promise.all(r.client_trust.map(async (f) => fromPemAll(await readFile(f, 'utf8'), 'CERTIFICATE')))).flat();
      return {
        prefix: r.prefix,
        target: r.target,
        agent,
        timeoutMs: r.timeout * 1000,
        identities: r.identities.map((p) => new IdentityPattern(p)),
        anchors,
        passAuthorization: r.pass_authorization,
      };
    }),
  );

  /** Who the caller is, as role-qualified identities: `cert:device/CN`, `cert:ra/CN` (EKU id-kp-cmcRA), `user:NAME`. */
  async function callerIdentities(route: Route, ctx: Context): Promise<Identity[]> {
    const out: Identity[] = [];
    const peer = peerCertificate(ctx.req.socket as TLSSocket);
    const certOk = peer !== undefined && route.anchors.length > 0 && chainsTo(peer, route.anchors, `proxy:${route.prefix}`);
    if (certOk) {
      o.checkRevoked?.(peer, `proxy:${route.prefix}`, route.anchors);
      out.push({ kind: 'cert', name: peer.cn, role: peer.isRa ? 'ra' : 'device' });
    }
    // with pass_authorization the header is the target's business, never read here
    const header = route.passAuthorization ? '' : ctx.get('Authorization');
    if (header) {
      if (!/^Basic\s/i.test(header)) throw unauthorized('only HTTP Basic authentication is supported');
      const basic = parseBasic(header);
      if (basic) {
        if (!(await passwords.verify(basic.user, basic.password))) throw unauthorized('invalid user name or password');
        out.push({ kind: 'user', name: basic.user, role: 'device' });
      }
    }
    if (out.length === 0) {
      throw unauthorized(peer && !certOk ? `client certificate not accepted on ${route.prefix}${peer.verifyError ? ` (${peer.verifyError})` : ''}` : 'authentication required');
    }
    return out;
  }

  /** Checks the request against its route; returns the identity it is admitted as. */
  async function admit(route: Route, ctx: Context, target: { path: string; query: string }): Promise<string> {
    const path = confinePath(target.path, route.prefix);
    if (route.identities.length === 0) throw forbidden(`${route.prefix} admits no identity (its identities list is empty)`);
    const ids = await callerIdentities(route, ctx);
    const admitted = ids.find((id) => route.identities.some((p) => p.match(id) !== undefined));
    if (!admitted) throw forbidden(`${ids.map(identityString).join(' and ')} may not use ${route.prefix}`);
    stripCallerAssertions(ctx.req.headers, route.passAuthorization);
    ctx.req.url = path + target.query;
    return identityString(admitted);
  }

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
    clientAnchors: compiled.flatMap((r) => r.anchors),
    async middleware(ctx, next) {
      const target = splitTarget(ctx.req.url ?? '');
      const route = compiled.find((r) => target.path.startsWith(r.prefix));
      if (!route) return next();
      let identity: string;
      try {
        identity = await admit(route, ctx, target);
      } catch (e) {
        logger.info({ route: route.prefix, method: ctx.method, path: target.path.slice(0, 200), reason: (e as Error).message }, 'proxy refused');
        throw e;
      }
      ctx.respond = false; // http-proxy writes the response itself, bytes unchanged
      (ctx.req as typeof ctx.req & { estgwDeadline?: number }).estgwDeadline = Date.now() + route.timeoutMs - 5;
      proxy.web(ctx.req, ctx.res, { target: route.target, agent: route.agent, proxyTimeout: route.timeoutMs });
      // the path without its query: registries put upload tokens there
      logger.info({ route: route.prefix, identity, method: ctx.method, path: target.path.slice(0, 200) }, 'proxied');
    },
    close() {
      for (const r of compiled) r.agent.destroy();
      proxy.close();
    },
  };
}
