// EST-level helpers shared by the server tests: enroll through the real TLS
// server, read certs-only and multipart answers, and check the wire rules of
// INTEROP.md (exact content types, 64-column base64, text/plain reasons).
import type { ExecutionContext } from 'ava';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { decodeEstBase64 } from '../../src/est/base64.js';
import { boundaryOf, parseMultipart } from '../../src/est/multipart.js';
import { parseCertsOnly } from '../../src/est/pkcs7.js';
import type { TestGateway } from './gateway.js';
import { type RawResponse, basic, httpsRequest } from './http.js';

export const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
export const CHALLENGE = 'Basic realm="estrealm"';
export const DEV_AUTH = basic('estuser', 'estpwd');

export interface EnrollOptions {
  label?: string;
  op?: 'simpleenroll' | 'simplereenroll' | 'serverkeygen';
  /** Authorization header value; `null` sends none. Default: estuser/estpwd. */
  auth?: string | null;
  cert?: string;
  key?: string;
  headers?: Record<string, string>;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  contentType?: string | null;
  /** Source address (127.0.0.2, …): another device as the gateway sees it. */
  localAddress?: string;
}

export const estUrl = (gw: TestGateway, op: string, label?: string) => `${gw.url}/${label ? `${label}/` : ''}${op}`;

/** POSTs a base64 CSR to an enrollment operation, as a well-behaved client would. */
export function enroll(gw: TestGateway, b64: string | Buffer, o: EnrollOptions = {}): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (o.contentType !== null) headers['Content-Type'] = o.contentType ?? 'application/pkcs10';
  const auth = o.auth === undefined ? DEV_AUTH : o.auth;
  if (auth !== null) headers.Authorization = auth;
  return httpsRequest(estUrl(gw, o.op ?? 'simpleenroll', o.label), {
    ca: gw.caPem,
    body: b64,
    headers: { ...headers, ...o.headers },
    ...(o.cert ? { cert: o.cert, key: o.key! } : {}),
    ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  });
}

export const get = (gw: TestGateway, op: string, label?: string) => httpsRequest(estUrl(gw, op, label), { ca: gw.caPem });

/** The certificates of a base64 certs-only body. */
export const certsOf = (body: Buffer): X509Certificate[] => parseCertsOnly(decodeEstBase64(body)).map((d) => new X509Certificate(d));

/** The one certificate of a 200 enrollment answer (fails the test with the reason otherwise). */
export function issuedCert(t: ExecutionContext, res: { status: number; body: Buffer }): X509Certificate {
  t.is(res.status, 200, res.body.toString());
  const certs = certsOf(res.body);
  t.is(certs.length, 1);
  return certs[0]!;
}

/** RFC 8951 §5: an error status with a text/plain, non-empty, one-line-ish reason. */
export function assertReason(t: ExecutionContext, res: { status: number; headers: Record<string, string>; body: Buffer }, status: number, reason?: RegExp): void {
  t.is(res.status, status, res.body.toString());
  t.regex(res.headers['content-type'] ?? '', /^text\/plain\b/, `content type of the ${res.status}`);
  const text = res.body.toString('utf8').trim();
  t.true(text.length > 0, 'the reason is not empty');
  t.false(/\n\s+at /.test(text), 'no stack trace');
  if (reason) t.regex(text, reason);
}

/** INTEROP.md: 64-column lines, at least one newline, the last line ends in LF. */
export function assertEstBase64(t: ExecutionContext, body: Buffer): void {
  const text = body.toString('latin1');
  t.true(text.endsWith('\n'), 'final LF');
  t.false(text.includes('\r'), 'LF line ends');
  const lines = text.split('\n').slice(0, -1);
  t.true(lines.length > 0 && lines.every((l) => l.length > 0 && l.length <= 64), 'lines of at most 64 columns');
  t.regex(text, /^[A-Za-z0-9+/=\n]+$/);
}

export interface KeygenAnswer {
  keyPart: { headers: Record<string, string>; body: Buffer };
  certPart: { headers: Record<string, string>; body: Buffer };
  key: ReturnType<typeof createPrivateKey>;
  cert: X509Certificate;
}

/** RFC 7030 §4.4.2: a multipart/mixed answer with the PKCS#8 key part and the certs-only part. */
export function serverKeygenAnswer(t: ExecutionContext, contentType: string, body: Buffer): KeygenAnswer {
  t.regex(contentType, /^multipart\/mixed; boundary=/);
  const parts = parseMultipart(body, boundaryOf(contentType));
  t.is(parts.length, 2);
  const keyPart = parts.find((p) => p.headers['content-type'] === 'application/pkcs8')!;
  const certPart = parts.find((p) => p.headers['content-type'] === CERTS_ONLY)!;
  t.truthy(keyPart, 'a part labelled application/pkcs8');
  t.truthy(certPart, 'a part labelled certs-only');
  const key = createPrivateKey({ key: decodeEstBase64(keyPart.body), format: 'der', type: 'pkcs8' });
  const certs = certsOf(certPart.body);
  t.is(certs.length, 1);
  const cert = certs[0]!;
  const pub = (k: ReturnType<typeof createPublicKey>) => k.export({ format: 'der', type: 'spki' });
  t.true(pub(createPublicKey(key)).equals(pub(cert.publicKey)), 'the certificate is for the generated key');
  return { keyPart, certPart, key, cert };
}

export const pem = (x: X509Certificate) => x.toString();
