// Reading EST responses, as every server in INTEROP.md sends them: content types
// prefix-matched (with or without parameters), bodies in base64 (any line
// length, CRLF or LF), PEM, or raw DER, PKCS#7 in DER or BER. Pure functions,
// tested against the captured responses in shared/vectors.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { EstError, type EstErrorKind } from '../errors.js';
import { decodeEstBase64, fromPemAll } from '../est/base64.js';
import { type CsrAttr, parseCsrAttrs } from '../est/csrattrs.js';
import { boundaryOf, parseMultipart } from '../est/multipart.js';
import { parseCertsOnly } from '../est/pkcs7.js';

export interface EstResponse {
  status: number;
  statusMessage: string;
  /** Header names lower-cased (node:http does this). */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const header = (r: EstResponse, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** `application/pkcs7-mime; smime-type=certs-only` → `application/pkcs7-mime`. */
export const mediaType = (contentType: string | undefined): string => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

const PKCS7_TYPES = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime', 'application/pkcs7']);

function expectType(r: EstResponse, accepted: Set<string> | string, what: string): void {
  const t = mediaType(header(r, 'content-type'));
  const ok = typeof accepted === 'string' ? t === accepted : accepted.has(t);
  if (!ok) {
    const want = typeof accepted === 'string' ? accepted : [...accepted][0];
    throw new EstError('badGateway', `${what}: server answered Content-Type "${header(r, 'content-type') ?? ''}", expected ${want}`);
  }
}

/**
 * Certificates from a certs-only body. Strict DER first (our codec); a BER
 * SignedData (indefinite lengths, as some CMS encoders write) is walked with
 * asn1js and each certificate taken as the exact bytes it was sent as.
 */
export function certsFromPkcs7Body(body: Buffer, what: string): Buffer[] {
  const text = body.subarray(0, 64).toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----') || body.includes('-----BEGIN CERTIFICATE-----')) {
    const certs = fromPemAll(body.toString('latin1'), 'CERTIFICATE');
    if (certs.length) return certs;
  }
  const der = decodeEstBase64(body, what);
  let certs: Buffer[];
  try {
    certs = parseCertsOnly(der);
  } catch (strictErr) {
    certs = certsFromBer(der, what, strictErr);
  }
  if (certs.length === 0) throw new EstError('badGateway', `${what}: the PKCS#7 holds no certificate`);
  return certs;
}

function certsFromBer(der: Buffer, what: string, strictErr: unknown): Buffer[] {
  const fail = () => new EstError('badGateway', `${what}: not a PKCS#7 certs-only structure (${(strictErr as Error).message})`, { cause: strictErr });
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) throw fail();
  const top = parsed.result;
  if (!(top instanceof asn1js.Sequence)) throw fail();
  const [type, explicit] = top.valueBlock.value;
  if (!(type instanceof asn1js.ObjectIdentifier) || type.valueBlock.toString() !== '1.2.840.113549.1.7.2') throw fail();
  const signedData = (explicit as asn1js.Constructed | undefined)?.valueBlock.value[0];
  if (!(signedData instanceof asn1js.Sequence)) throw fail();
  const certSet = signedData.valueBlock.value.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
  if (!certSet) return [];
  return certSet.valueBlock.value.map((c) => Buffer.from(c.valueBeforeDecodeView));
}

/** RFC 7030 §4.1.3: the /cacerts answer. */
export function parseCacertsResponse(r: EstResponse): Buffer[] {
  expectType(r, PKCS7_TYPES, 'cacerts');
  return certsFromPkcs7Body(r.body, 'cacerts response');
}

/** RFC 7030 §4.2.3: the certificate(s) of a simpleenroll/simplereenroll answer. */
export function parseEnrollResponse(r: EstResponse, op: string): Buffer[] {
  expectType(r, PKCS7_TYPES, op);
  return certsFromPkcs7Body(r.body, `${op} response`);
}

/** RFC 7030 §4.5.2: 204 and 404 mean "no attributes". */
export function parseCsrAttrsResponse(r: EstResponse): CsrAttr[] {
  if (r.status === 204 || r.status === 404) return [];
  expectType(r, 'application/csrattrs', 'csrattrs');
  if (r.body.length === 0 || r.body.every((b) => b === 0 || b === 0x0a || b === 0x0d)) return [];
  try {
    return parseCsrAttrs(decodeEstBase64(r.body, 'csrattrs response'));
  } catch (e) {
    throw new EstError('badGateway', `csrattrs: unreadable answer: ${(e as Error).message}`, { cause: e });
  }
}

export interface ServerKeygenResult {
  privateKey: KeyObject;
  certificates: Buffer[];
}

/** A private key as servers send it in the key part: PKCS#8, or PKCS#1 / SEC1 labelled as PKCS#8 (libest). */
export function privateKeyFromDer(der: Buffer): KeyObject {
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch {
      // next encoding
    }
  }
  throw new EstError('badGateway', 'serverkeygen: the key part is not a PKCS#8, PKCS#1 or SEC1 private key');
}

/** RFC 7030 §4.4.2: multipart/mixed with a key part and a certs-only part, in either order. */
export function parseServerKeygenResponse(r: EstResponse): ServerKeygenResult {
  expectType(r, 'multipart/mixed', 'serverkeygen');
  const parts = parseMultipart(r.body, boundaryOf(header(r, 'content-type') ?? ''));
  let privateKey: KeyObject | undefined;
  let certificates: Buffer[] | undefined;
  for (const p of parts) {
    const ct = p.headers['content-type'] ?? '';
    const t = mediaType(ct);
    if (t === 'application/pkcs8') privateKey = privateKeyFromDer(decodeEstBase64(p.body, 'serverkeygen key part'));
    else if (PKCS7_TYPES.has(t) && /server-generated-key/i.test(ct)) {
      throw new EstError('notImplemented', 'serverkeygen: the server encrypted the key (RFC 7030 §4.4.2 asymmetric encryption); only unencrypted keys are supported');
    } else if (PKCS7_TYPES.has(t)) certificates = certsFromPkcs7Body(p.body, 'serverkeygen certificate part');
  }
  if (!privateKey) throw new EstError('badGateway', 'serverkeygen: the answer has no application/pkcs8 part');
  if (!certificates) throw new EstError('badGateway', 'serverkeygen: the answer has no application/pkcs7-mime part');
  return { privateKey, certificates };
}

const KIND_BY_STATUS: Record<number, EstErrorKind> = {
  400: 'malformed', 401: 'unauthorized', 403: 'forbidden', 404: 'notFound', 405: 'methodNotAllowed',
  408: 'timeout', 413: 'tooLarge', 415: 'unsupportedMediaType', 501: 'notImplemented', 502: 'badGateway',
  503: 'unavailable', 504: 'upstreamTimeout',
};

/** Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}

/** The server's reason, on one line: RFC 8951 §5 says errors carry a text/plain body. */
export function reasonOf(r: EstResponse): string {
  const t = mediaType(header(r, 'content-type'));
  if (r.body.length === 0 || (t !== '' && !t.startsWith('text/'))) return '';
  // eslint-disable-next-line no-control-regex
  const text = r.body.toString('utf8').replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/** Any answer that is not the success of `op`, as an EstError with one-line message. */
export function errorFromResponse(op: string, r: EstResponse): EstError {
  const kind = KIND_BY_STATUS[r.status] ?? (r.status >= 500 ? 'unavailable' : 'malformed');
  const reason = reasonOf(r);
  const retryAfter = parseRetryAfter(header(r, 'retry-after'));
  const msg = `${op}: server answered ${r.status}${r.statusMessage ? ` ${r.statusMessage}` : ''}${reason ? `: ${reason}` : ''}`;
  return new EstError(kind, msg, retryAfter === undefined ? {} : { retryAfter });
}
