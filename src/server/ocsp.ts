// OCSP (RFC 6960) at /ocsp, without authentication, on the HTTPS listener and
// on crl_listen. A signing layer answers for its local CAs from the ledger,
// signed by the CA itself: `good` only for a certificate on record, not
// revoked, issued by that CA's current key; anything else it does not know is
// `unknown`. A forwarding layer relays what it does not hold to its parent
// (src/server/ocsp-relay.ts) and passes down only what a CA it knows signed.
import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import {
  type CertId, OCSP_REQUEST_TYPE, OCSP_RESPONSE_TYPE, type OcspRequest, type SingleResponse, buildOcspResponse, certIdNamesIssuer,
  ocspErrorResponse, parseOcspRequest,
} from '../est/ocsp.js';
import { caKeyIdentifier } from '../est/spki.js';
import type { Ledger } from '../ledger/ledger.js';
import type { CaMaterial } from '../pki/ca.js';
import type { Logger } from '../util/log.js';
import { PLAIN_TEXT } from '../util/metrics-server.js';

export const OCSP_PATH = '/ocsp';
/** CertIDs per request: one client asks about its chain, not about a plant. */
export const MAX_CERT_IDS = 8;
/** A request with MAX_CERT_IDS SHA-256 CertIDs and a nonce is well under 2 KiB. */
export const MAX_OCSP_REQUEST_BYTES = 4096;
/** The GET form: base64 of such a request, URL-encoded. */
const MAX_GET_PATH = 2 * MAX_OCSP_REQUEST_BYTES;

/** What answers requests this layer does not hold a CA for. */
export interface OcspUpstream {
  relay(request: OcspRequest, der: Buffer): Promise<Buffer>;
}

export interface OcspResponderOptions {
  ledger?: Ledger;
  /** The local CAs, as loaded now (a renewed sub-CA signs with its new key). */
  cas: () => Map<string, CaMaterial>;
  /** How long a local answer may be relied on ([cas.NAME] ocsp_validity), in ms. */
  validityMs: (ca: string) => number;
  upstream?: OcspUpstream;
  /** [server] ocsp_rate: local answers (CA signatures) per second, and the burst. */
  ratePerSecond: number;
  logger: Logger;
  now?: () => number;
}

const keyIdHex = (ca: CaMaterial) => caKeyIdentifier(ca.fields).toString('hex');

export class OcspResponder {
  /** Token bucket of signatures: full at start, refilled at ratePerSecond. */
  private tokens: number;
  private filledAt: number;
  private warnedAt = -Infinity;

  constructor(private readonly o: OcspResponderOptions) {
    this.tokens = o.ratePerSecond;
    this.filledAt = this.now();
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Whether one more signature fits the rate; a nonce makes every answer a fresh one, so only a bound keeps OCSP from taking enrollment's CPU. */
  private takeToken(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.o.ratePerSecond, this.tokens + ((now - this.filledAt) / 1000) * this.o.ratePerSecond);
    this.filledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (now - this.warnedAt >= 60_000) {
      this.warnedAt = now;
      this.o.logger.warn({ ratePerSecond: this.o.ratePerSecond }, 'OCSP requests past ocsp_rate: answering tryLater');
    }
    return false;
  }

  /** An OCSPResponse for a DER request: always one (an error status when need be), never a throw (the relay does not throw either). */
  async answer(der: Buffer): Promise<Buffer> {
    let req: OcspRequest;
    try {
      req = parseOcspRequest(der, { maxCertIds: MAX_CERT_IDS });
    } catch (e) {
      this.o.logger.info({ reason: (e as Error).message }, 'OCSP request refused');
      return ocspErrorResponse('malformedRequest');
    }
    const cas = [...this.o.cas().values()];
    const signer = cas.find((ca) => certIdNamesIssuer(req.certIds[0]!, ca.fields.subjectDer, ca.fields.spki));
    if (signer) {
      // one response, one signer: every CertID must name the same local CA
      if (!req.certIds.every((id) => certIdNamesIssuer(id, signer.fields.subjectDer, signer.fields.spki))) return ocspErrorResponse('unauthorized');
      if (!this.takeToken()) return ocspErrorResponse('tryLater');
      try {
        return this.local(signer, req);
      } catch (e) {
        this.o.logger.error({ err: e, ca: signer.name }, 'cannot answer OCSP from the ledger');
        return ocspErrorResponse('internalError');
      }
    }
    if (this.o.upstream && !req.certIds.some((id) => cas.some((ca) => certIdNamesIssuer(id, ca.fields.subjectDer, ca.fields.spki)))) {
      return this.o.upstream.relay(req, der);
    }
    // RFC 6960 §2.3: not a CA this responder can answer for
    return ocspErrorResponse('unauthorized');
  }

  private local(ca: CaMaterial, req: OcspRequest): Buffer {
    const now = this.now();
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.o.validityMs(ca.name));
    const keyId = keyIdHex(ca);
    const responses: SingleResponse[] = req.certIds.map((id: CertId) => {
      const rec = this.o.ledger?.store.get(ca.name, id.serialHex);
      // on record, and signed by this key (a replaced sub-CA key's certificates are not this key's to vouch for)
      const cert: SingleResponse['cert'] = !rec || rec.issuerKeyId !== keyId
        ? { status: 'unknown' }
        : rec.revoked
          ? { status: 'revoked', revokedAt: new Date(rec.revoked.at), reason: rec.revoked.reason }
          : { status: 'good' };
      return { certId: id.der, cert, thisUpdate, nextUpdate };
    });
    return buildOcspResponse({ certDer: ca.certDer, spki: ca.fields.spki, key: ca.key }, thisUpdate, responses, req.nonce);
  }
}

export interface OcspHttpAnswer {
  status: number;
  type: string;
  body: Buffer | string;
  headers?: Record<string, string>;
}

const text = (status: number, body: string, headers?: Record<string, string>): OcspHttpAnswer => ({ status, type: PLAIN_TEXT, body, ...(headers ? { headers } : {}) });
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** RFC 6960 A.1 GET: base64 of the DER request, URL-encoded; base64url is taken too. */
function decodeGetRequest(encoded: string): Buffer | undefined {
  let s: string;
  try {
    s = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  if (!BASE64.test(s)) return undefined;
  if (s.length % 4) s += '='.repeat(4 - (s.length % 4));
  return Buffer.from(s, 'base64');
}

/** Whether a request target is OCSP's: checked before anything async, so other requests pass at the cost of a comparison. */
export const isOcspPath = (rawUrl: string): boolean => rawUrl.startsWith(OCSP_PATH) && (rawUrl.length === OCSP_PATH.length || '/?'.includes(rawUrl[OCSP_PATH.length]!));

/**
 * The answer for /ocsp (POST) and /ocsp/... (GET), or undefined for any other
 * path. `rawUrl` is the request target as sent: base64 may contain '/' and
 * '+', which a decoded path would have lost.
 */
export async function answerOcsp(responder: OcspResponder | undefined, req: IncomingMessage, rawUrl: string): Promise<OcspHttpAnswer | undefined> {
  if (!responder || !isOcspPath(rawUrl)) return undefined;
  const path = rawUrl.split('?')[0] ?? '';
  let der: Buffer | undefined;
  if (req.method === 'POST' && (path === OCSP_PATH || path === `${OCSP_PATH}/`)) {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== OCSP_REQUEST_TYPE) return text(415, `an OCSP request is sent as ${OCSP_REQUEST_TYPE}\n`);
    try {
      der = await getRawBody(req, { limit: MAX_OCSP_REQUEST_BYTES });
    } catch (e) {
      const tooLarge = (e as { type?: string }).type === 'entity.too.large';
      return text(tooLarge ? 413 : 400, tooLarge ? `an OCSP request is at most ${MAX_OCSP_REQUEST_BYTES} bytes\n` : 'the request body could not be read\n');
    }
  } else if ((req.method === 'GET' || req.method === 'HEAD') && path.length > OCSP_PATH.length + 1) {
    if (path.length > MAX_GET_PATH) return text(414, `an OCSP GET request is at most ${MAX_GET_PATH} characters\n`);
    der = decodeGetRequest(path.slice(OCSP_PATH.length + 1));
  } else {
    return text(405, 'OCSP: POST /ocsp (application/ocsp-request) or GET /ocsp/BASE64\n', { Allow: 'GET, HEAD, POST' });
  }
  const body = der ? await responder.answer(der) : ocspErrorResponse('malformedRequest');
  return { status: 200, type: OCSP_RESPONSE_TYPE, body };
}
