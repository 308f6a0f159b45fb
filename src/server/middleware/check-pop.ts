// RFC 7030 §3.5 proof-of-possession linking: challengePassword = base64(tls-unique).
import type { Context, Next } from 'koa';
import { malformed } from '../../errors.js';
import type { EstState } from '../state.js';

/** tls-unique (RFC 5929 §3.1): the first Finished of the latest handshake — the server's on a resumption. */
export function tlsUnique(socket: import('node:tls').TLSSocket): Buffer | undefined {
  return socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished();
}

export async function checkPop(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const { csr, label, socket, identity } = ctx.state;
  const given = csr!.challengePassword;
  const required = label!.cfg.require_pop;
  // §3.7: an RA checked PoP against its own client and re-signs nothing; it cannot carry our tls-unique
  if ((given === undefined && !required) || identity?.role === 'ra') return next();
  if (socket!.getProtocol() !== 'TLSv1.2') {
    throw malformed(
      given === undefined
        ? `label "${label!.name}" requires proof-of-possession linking, which needs TLS 1.2 (tls-unique)`
        : 'the CSR carries a challengePassword, but TLS 1.3 has no tls-unique to check it against; use TLS 1.2 or omit it',
    );
  }
  if (given === undefined) {
    throw malformed(`label "${label!.name}" requires proof-of-possession: put base64(tls-unique) in the CSR's challengePassword (RFC 7030 §3.5)`);
  }
  const unique = tlsUnique(socket!);
  if (!unique || given !== unique.toString('base64')) {
    throw malformed("the CSR's challengePassword does not match this connection's tls-unique (RFC 7030 §3.5)");
  }
  await next();
}
