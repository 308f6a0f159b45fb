// RFC 7030 §4.2.1 + RFC 8951: base64 body -> PKCS#10, judged cheapest first: its
// structure and names as it is parsed, then the label's key limits, and only then
// the signature, whose cost a hostile key (huge modulus or exponent) multiplies.
import type { Context, Next } from 'koa';
import { EstError } from '../../errors.js';
import { decodeEstBase64 } from '../../est/base64.js';
import { parseCsr, verifyCsr } from '../../est/csr.js';
import type { EstState } from '../state.js';

export async function decodeCsr(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const label = ctx.state.label!;
  const der = decodeEstBase64(ctx.state.body ?? Buffer.alloc(0), 'PKCS#10 request body');
  const csr = parseCsr(der, { maxNameLength: label.cfg.max_name_length });
  // serverkeygen: the CSR's key and signature are ignored (RFC 7030 §4.4.1); it only carries names
  if (ctx.state.op !== 'serverkeygen') {
    label.policy.checkKey(csr);
    if (!verifyCsr(csr)) throw new EstError('badSignature', 'PKCS#10 request signature does not verify');
  }
  ctx.state.csr = csr;
  await next();
}
