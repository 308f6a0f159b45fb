// EST client: one method per RFC 7030 operation, over node:https. What it sends
// is what every server in INTEROP.md accepts (application/pkcs10, 64-column
// base64 with a final LF, HTTP/1.1); what it accepts is whatever those servers
// send (see response.ts).
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { EstError, isEstError } from '../errors.js';
import { encodeEstBase64 } from '../est/base64.js';
import { parseCertificate } from '../est/certificate.js';
import { parseCsr } from '../est/csr.js';
import type { CsrAttr } from '../est/csrattrs.js';
import { OID } from '../est/oids.js';
import { spkiDer } from '../pki/keys.js';
import type { Logger } from '../util/log.js';
import {
  type EstResponse, type ServerKeygenResult, errorFromResponse, parseCacertsResponse, parseCsrAttrsResponse, parseEnrollResponse,
  parseRetryAfter, parseServerKeygenResponse,
} from './response.js';
import { popChallengePassword, tlsUniqueOf } from './tls-unique.js';

export const OPERATIONS = ['cacerts', 'simpleenroll', 'simplereenroll', 'csrattrs', 'serverkeygen', 'fullcmc'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface CsrContext {
  /** base64(tls-unique) for the challengePassword, when PoP linking applies to this connection (RFC 7030 §3.5). */
  challengePassword?: string;
}
/** A finished CSR (DER), or a function that builds one for the connection it will travel on. */
export type CsrSource = Buffer | ((ctx: CsrContext) => Buffer | Promise<Buffer>);

export interface EstClientOptions {
  /** `https://host:port/.well-known/est` (a bare `https://host:port` gets the well-known path). */
  url: string;
  /** RFC 7030 §3.2.2 additional path segment (a CA label). */
  label?: string;
  /** PEM trust anchors for the server's TLS certificate; absent: the system's roots. */
  trust?: string | Buffer | Array<string | Buffer>;
  /** Do not verify the server at all. Only for the RFC 7030 §4.1.1 bootstrap, which checks a pin instead. */
  insecureSkipVerify?: boolean;
  username?: string;
  password?: string;
  /** `preemptive` (aziot, globalsign: credentials on every request) or `challenge` (libest: only after a 401). */
  basicAuth?: 'preemptive' | 'challenge';
  /** TLS client certificate (PEM, may include the chain) and its key. */
  clientCert?: { cert: string | Buffer; key: string | Buffer };
  /** PoP linking: `auto` when csrattrs lists challengePassword, `always`, or `never`. */
  pop?: 'auto' | 'always' | 'never';
  /** Per request. */
  timeoutMs?: number;
  /** For the TCP connection and TLS handshake; default: the request timeout. */
  connectTimeoutMs?: number;
  /**
   * Reuse connections (a gateway forwarding as an RA). Off by default: a
   * device enrolls rarely, and libest closes after each answer anyway.
   */
  keepAlive?: boolean;
  /** How long to wait out 202 + Retry-After by resending; 0: report `pending` at once. */
  pendingBudgetMs?: number;
  maxTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  logger?: Logger;
  /** Injected by tests. */
  sleep?: (ms: number) => Promise<void>;
}

export interface EnrollResult {
  /** The issued certificate: the one carrying the CSR's public key. */
  certificate: Buffer;
  /** Any other certificates the answer held. */
  extra: Buffer[];
}

export interface Exchange {
  response: EstResponse;
  /** The server's TLS chain as presented (leaf first), for the §4.1.1 bootstrap. */
  serverChain: Buffer[];
  /** The CSR actually sent, if any. */
  csr?: Buffer;
}

const MAX_RESPONSE_BYTES = 1 << 20;
const DEFAULT_TIMEOUT_MS = 30_000;
/** RFC 7030 §4.2.3 requires Retry-After with 202; this covers servers that forget it. */
const DEFAULT_RETRY_AFTER_S = 60;
const LABEL_RE = /^[A-Za-z0-9._~-]+$/;

export function estPath(url: URL, label: string | undefined, op: Operation): string {
  let base = url.pathname.replace(/\/+$/, '');
  if (base === '') base = '/.well-known/est';
  if (label !== undefined) {
    if (!LABEL_RE.test(label) || (OPERATIONS as readonly string[]).includes(label)) {
      throw new EstError('malformed', `invalid EST label "${label}": one path segment that is not an operation name`);
    }
    base += `/${label}`;
  }
  return `${base}/${op}`;
}

function peerChainOf(sock: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c = sock.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(Buffer.from(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** A transport error as one line: what we tried to reach and what happened. */
function networkError(op: string, where: string, e: unknown): EstError {
  if (isEstError(e)) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code ? `${err.code}: ` : '';
  const tls = /CERT|SELF_SIGNED|ISSUER|ALTNAME|SIGNATURE|VERIFY/.test(err.code ?? '');
  const what = tls ? 'cannot verify the server certificate of' : 'cannot reach';
  return new EstError('unavailable', `${op}: ${what} ${where}: ${code}${err.message}`, { cause: e });
}

/**
 * The request went out on a kept-alive connection the server had already
 * closed (libest's estserver closes after every answer, without saying so
 * after a 401): nothing was answered, so it is resent on a new connection.
 */
class StaleConnection extends Error {
  constructor(readonly error: EstError) {
    super(error.message);
  }
}
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const MAX_STALE_RESENDS = 2;

export class EstClient {
  readonly url: URL;
  private readonly o: EstClientOptions;
  private readonly agent: Agent;
  private agentTls12: Agent | undefined;
  private popAsked: Promise<boolean> | undefined;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: EstClientOptions) {
    this.o = options;
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new EstError('malformed', `invalid EST URL "${options.url}"`);
    }
    if (u.protocol !== 'https:') throw new EstError('malformed', `EST URL must be https:// (RFC 7030 §3.3), got ${options.url}`);
    this.url = u;
    estPath(u, options.label, 'cacerts'); // validates the label now rather than on first use
    this.agent = this.makeAgent(options.maxTlsVersion);
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private makeAgent(maxVersion: 'TLSv1.2' | 'TLSv1.3' | undefined): Agent {
    const o = this.o;
    const ca = o.trust === undefined ? undefined : Array.isArray(o.trust) ? o.trust : [o.trust];
    return new Agent({
      keepAlive: o.keepAlive ?? false,
      ...(o.keepAlive ? { maxSockets: 64, maxFreeSockets: 16 } : {}),
      minVersion: 'TLSv1.2',
      ...(maxVersion ? { maxVersion } : {}),
      ...(ca ? { ca } : {}),
      ...(o.clientCert ? { cert: o.clientCert.cert, key: o.clientCert.key } : {}),
      rejectUnauthorized: !o.insecureSkipVerify,
    });
  }

  close(): void {
    this.agent.destroy();
    this.agentTls12?.destroy();
  }

  private get where(): string {
    return this.url.host;
  }

  private get hasBasic(): boolean {
    return this.o.username !== undefined && this.o.password !== undefined;
  }

  /** RFC 7030 §4.1: the CA certificates, root and intermediates. */
  async cacerts(): Promise<Buffer[]> {
    return (await this.cacertsWithServerChain()).certs;
  }

  /** §4.1 plus the TLS chain the server presented, for the §4.1.1 bootstrap. */
  async cacertsWithServerChain(): Promise<{ certs: Buffer[]; serverChain: Buffer[] }> {
    const ex = await this.send('cacerts', 'GET');
    if (ex.response.status !== 200) throw errorFromResponse('cacerts', ex.response);
    return { certs: parseCacertsResponse(ex.response), serverChain: ex.serverChain };
  }

  /** RFC 7030 §4.5: attributes the server wants in CSRs; none is []. */
  async csrattrs(): Promise<CsrAttr[]> {
    const ex = await this.send('csrattrs', 'GET');
    if (ex.response.status !== 200 && ex.response.status !== 204 && ex.response.status !== 404) throw errorFromResponse('csrattrs', ex.response);
    return parseCsrAttrsResponse(ex.response);
  }

  /** RFC 7030 §4.2.1: a certificate for a new identity. */
  simpleenroll(csr: CsrSource): Promise<EnrollResult> {
    return this.enroll('simpleenroll', csr);
  }

  /** RFC 7030 §4.2.2: renew or rekey; the TLS client certificate must be the one renewed. */
  simplereenroll(csr: CsrSource): Promise<EnrollResult> {
    return this.enroll('simplereenroll', csr);
  }

  /** RFC 7030 §4.4: the server generates the key; returned unencrypted. */
  async serverkeygen(csr: CsrSource): Promise<ServerKeygenResult & EnrollResult> {
    const ex = await this.send('serverkeygen', 'POST', csr);
    if (ex.response.status !== 200) throw errorFromResponse('serverkeygen', ex.response);
    const r = parseServerKeygenResponse(ex.response);
    const spki = spkiDer(r.privateKey);
    const leaf = r.certificates.find((c) => parseCertificate(c).spki.equals(spki));
    if (!leaf) throw new EstError('badGateway', 'serverkeygen: the certificate returned does not match the key returned');
    return { ...r, certificate: leaf, extra: r.certificates.filter((c) => c !== leaf) };
  }

  private async enroll(op: 'simpleenroll' | 'simplereenroll', csr: CsrSource): Promise<EnrollResult> {
    const ex = await this.send(op, 'POST', csr);
    if (ex.response.status !== 200) throw errorFromResponse(op, ex.response);
    const certs = parseEnrollResponse(ex.response, op);
    const spki = parseCsr(ex.csr!).spki;
    const leaf = certs.find((c) => parseCertificate(c).spki.equals(spki));
    if (!leaf) throw new EstError('badGateway', `${op}: no certificate in the answer carries the requested public key`);
    return { certificate: leaf, extra: certs.filter((c) => c !== leaf) };
  }

  /**
   * GET of another resource at the server's origin (a parent layer's /crl/),
   * with the same TLS identity, trust and timeouts as the EST operations.
   */
  async getResource(path: string): Promise<EstResponse> {
    if (!path.startsWith('/')) throw new EstError('malformed', `not an absolute path: ${path}`);
    for (let stale = 0; ; stale++) {
      try {
        return (await this.exchange(`GET ${path}`, path, 'GET', false, false)).response;
      } catch (e) {
        if (!(e instanceof StaleConnection)) throw e;
        if (stale >= MAX_STALE_RESENDS) throw e.error;
      }
    }
  }

  /** Whether CSRs get PoP linking: configured, or (auto) because csrattrs lists challengePassword. */
  popWanted(): Promise<boolean> {
    if (this.o.pop === 'always') return Promise.resolve(true);
    if (this.o.pop === 'never') return Promise.resolve(false);
    this.popAsked ??= this.csrattrs().then(
      (attrs) => attrs.some((a) => ('oid' in a ? a.oid : a.type) === OID.challengePassword),
      (e: unknown) => {
        this.o.logger?.debug({ err: (e as Error).message }, 'csrattrs failed; no PoP linking');
        return false;
      },
    );
    return this.popAsked;
  }

  /**
   * One operation, with the retries RFC 7030 defines: once more with Basic
   * after a 401 challenge (§3.2.3), and 202 + Retry-After resent until the
   * pending budget is spent (§4.2.3).
   */
  async send(op: Operation, method: 'GET' | 'POST', csr?: CsrSource, extraHeaders?: Record<string, string>): Promise<Exchange> {
    const pop = typeof csr === 'function' ? await this.popWanted() : false;
    const build = csr === undefined ? undefined : this.csrBuilder(csr, pop);
    const deadline = Date.now() + (this.o.pendingBudgetMs ?? 0);
    let basic = this.hasBasic && (this.o.basicAuth ?? 'preemptive') === 'preemptive';
    let stale = 0;
    for (;;) {
      let ex: Exchange;
      try {
        ex = await this.exchange(op, estPath(this.url, this.o.label, op), method, basic, pop, build, extraHeaders);
      } catch (e) {
        if (!(e instanceof StaleConnection)) throw e;
        if (stale++ >= MAX_STALE_RESENDS) throw e.error;
        this.o.logger?.debug({ op }, 'the server had closed the kept-alive connection; resending on a new one');
        continue;
      }
      const r = ex.response;
      if (r.status === 401 && this.hasBasic && !basic) {
        this.o.logger?.debug({ op }, '401 challenge; sending Basic credentials');
        basic = true;
        continue;
      }
      if (r.status === 202) {
        const ra = parseRetryAfter(typeof r.headers['retry-after'] === 'string' ? r.headers['retry-after'] : undefined) ?? DEFAULT_RETRY_AFTER_S;
        if (Date.now() + ra * 1000 <= deadline) {
          this.o.logger?.info({ op, retryAfter: ra }, 'request pending at the server; waiting to resend');
          await this.sleep(ra * 1000);
          continue;
        }
        throw new EstError('pending', `${op}: the server holds the request for approval; retry after ${ra} s`, { retryAfter: ra });
      }
      return ex;
    }
  }

  /** Resends reuse the same CSR bytes unless it is bound to the connection by tls-unique. */
  private csrBuilder(src: CsrSource, pop: boolean): (sock: TLSSocket) => Promise<Buffer> {
    let cached: Buffer | undefined;
    return async (sock) => {
      if (Buffer.isBuffer(src)) return src;
      if (!pop) return (cached ??= await src({}));
      const tu = tlsUniqueOf(sock);
      if (!tu) throw new EstError('unavailable', `PoP linking (RFC 7030 §3.5) needs TLS 1.2, but the connection uses ${sock.getProtocol() ?? 'no TLS'}`);
      return src({ challengePassword: popChallengePassword(tu) });
    };
  }

  private tls12Agent(): Agent {
    return (this.agentTls12 ??= this.makeAgent('TLSv1.2'));
  }

  /** One HTTP/1.1 request on a fresh connection; the body is built once the TLS handshake is done. */
  private exchange(
    op: string,
    path: string,
    method: 'GET' | 'POST',
    sendBasic: boolean,
    pop: boolean,
    build?: (s: TLSSocket) => Promise<Buffer>,
    extraHeaders: Record<string, string> = {},
  ): Promise<Exchange> {
    const timeoutMs = this.o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const connectTimeoutMs = Math.min(this.o.connectTimeoutMs ?? timeoutMs, timeoutMs);
    const headers: Record<string, string> = { 'User-Agent': 'estgw-client', Accept: '*/*', ...extraHeaders };
    if (sendBasic) headers.Authorization = `Basic ${Buffer.from(`${this.o.username}:${this.o.password}`).toString('base64')}`;
    if (build) {
      headers['Content-Type'] = 'application/pkcs10';
      headers['Content-Transfer-Encoding'] = 'base64';
    }
    this.o.logger?.debug({ op, url: `${this.url.origin}${path}`, basic: sendBasic, pop }, 'EST request');
    return new Promise<Exchange>((resolve, reject) => {
      let settled = false;
      let serverChain: Buffer[] = [];
      let sentCsr: Buffer | undefined;
      const req = request({
        hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: this.url.port || 443,
        path,
        method,
        headers,
        agent: pop ? this.tls12Agent() : this.agent,
      });
      const timer = setTimeout(() => fail(new EstError('upstreamTimeout', `${op}: no answer from ${this.where} within ${timeoutMs} ms`)), timeoutMs);
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        req.destroy();
        reject(e instanceof StaleConnection ? e : networkError(op, this.where, e));
      };
      let responded = false;
      req.on('error', (e: NodeJS.ErrnoException) => {
        const stale = !responded && req.reusedSocket && STALE_CODES.has(e.code ?? '');
        fail(stale ? new StaleConnection(networkError(op, this.where, e)) : e);
      });
      req.on('socket', (s) => {
        const sock = s as TLSSocket;
        const onSecure = () => {
          clearTimeout(connectTimer);
          serverChain = peerChainOf(sock);
          if (!build) {
            req.end();
            return;
          }
          build(sock).then((der) => {
            sentCsr = der;
            const body = Buffer.from(encodeEstBase64(der), 'latin1');
            req.setHeader('Content-Length', body.length);
            req.end(body);
          }, fail);
        };
        // a kept-alive socket from the agent's pool is already past its handshake
        if (!sock.connecting && sock.encrypted && sock.getProtocol?.()) {
          onSecure();
          return;
        }
        // no TCP connection: unreachable; TCP accepted but no TLS handshake (a hung process): a timeout
        connectTimer = setTimeout(
          () =>
            fail(
              sock.connecting
                ? new EstError('unavailable', `${op}: cannot connect to ${this.where} within ${connectTimeoutMs} ms`)
                : new EstError('upstreamTimeout', `${op}: ${this.where} accepted the connection but did not complete the TLS handshake within ${connectTimeoutMs} ms`),
            ),
          connectTimeoutMs,
        );
        sock.once('secureConnect', onSecure);
      });
      req.on('response', (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) fail(new EstError('badGateway', `${op}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(connectTimer);
          const response: EstResponse = { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) };
          this.o.logger?.debug({ op, status: response.status }, 'EST response');
          resolve(sentCsr ? { response, serverChain, csr: sentCsr } : { response, serverChain });
        });
      });
    });
  }
}
