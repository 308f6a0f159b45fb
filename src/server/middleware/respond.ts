// Response writers. Wire forms every peer in INTEROP.md accepts: exact content
// types, 64-column base64 with a final LF, Content-Length (Koa sets it), no chunking.
import type { Context, Next } from 'koa';
import { EstError } from '../../errors.js';
import { encodeEstBase64 } from '../../est/base64.js';
import { buildServerKeygenBody, SERVERKEYGEN_BOUNDARY } from '../../est/multipart.js';
import { buildCertsOnly } from '../../est/pkcs7.js';
import type { EnrollOperation, ServerKeygenResult } from '../../issuer/issuer.js';
import type { Services } from '../services.js';
import type { EstState } from '../state.js';

export const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
type Ctx = Context & { state: EstState };

function send(ctx: Ctx, type: string, body: string | Buffer): void {
  // headers first: with Content-Type set, Koa's body setter skips its mime lookup
  ctx.set('Content-Type', type);
  ctx.set('Content-Transfer-Encoding', 'base64');
  ctx.status = 200;
  ctx.body = body;
}

/** RFC 7030 §4.1.3; a label's chain body is encoded again only when the chain changes. */
export function respondCaCerts(services: Services) {
  const encoded = new Map<string, { chain: Buffer[]; body: string }>();
  const same = (a: Buffer[], b: Buffer[]) => a.length === b.length && a.every((c, i) => c.equals(b[i]!));
  return async function respondCaCertsFor(ctx: Ctx): Promise<void> {
    const label = ctx.state.label!;
    const chain = await services.caChain(label);
    let hit = encoded.get(label.name);
    if (!hit || !same(hit.chain, chain)) encoded.set(label.name, (hit = { chain, body: encodeEstBase64(buildCertsOnly(chain)) }));
    send(ctx, 'application/pkcs7-mime', hit.body);
  };
}

/** RFC 7030 §4.5.2: 204 when the label has nothing to ask for. */
export async function respondCsrAttrs(ctx: Ctx): Promise<void> {
  const body = ctx.state.label!.csrAttrs;
  if (body === undefined) {
    ctx.status = 204;
    return;
  }
  send(ctx, 'application/csrattrs', body);
}

/** Issues (or forwards) and answers with the certificate alone: libest rejects enroll answers over 4 KiB. */
export function issueCertificate(op: EnrollOperation) {
  return async function issue(ctx: Ctx, _next: Next): Promise<void> {
    const s = ctx.state;
    const req = {
      op, label: s.label!.name, csr: s.csr!, decision: s.decision!, identity: s.identity!,
      // not the TLS client certificate itself: an RA's Client-Cert
      ...(s.currentCert ? { currentCert: s.currentCert, ...(s.currentCert !== s.peer?.der ? { relayed: true } : {}) } : {}),
    };
    if (op === 'serverkeygen') {
      const r: ServerKeygenResult = await s.label!.issuer.serverKeygen(req);
      s.issued = r;
      ctx.set('Content-Type', `multipart/mixed; boundary=${SERVERKEYGEN_BOUNDARY}`);
      ctx.status = 200;
      ctx.body = buildServerKeygenBody(r.privateKey, buildCertsOnly([r.certDer]));
      return;
    }
    s.issued = await s.label!.issuer.enroll(req);
    send(ctx, CERTS_ONLY, encodeEstBase64(buildCertsOnly([s.issued.certDer])));
  };
}

export async function notImplemented(): Promise<void> {
  throw new EstError('notImplemented', 'fullcmc is not implemented by this server');
}
