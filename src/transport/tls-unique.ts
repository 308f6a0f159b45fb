// RFC 7030 §3.5 proof-of-possession linking: the CSR's challengePassword carries
// base64(tls-unique) of the connection it is sent on. tls-unique (RFC 5929 §3)
// is the first Finished message of the latest handshake, which exists only up to
// TLS 1.2: the client's own on a full handshake, the server's on a resumed one.
import type { TLSSocket } from 'node:tls';

export function tlsUniqueOf(socket: TLSSocket): Buffer | undefined {
  if (socket.getProtocol() !== 'TLSv1.2') return undefined;
  const finished = socket.isSessionReused() ? socket.getPeerFinished() : socket.getFinished();
  return finished && finished.length > 0 ? finished : undefined;
}

/** The challengePassword value RFC 7030 §3.5 asks for. */
export const popChallengePassword = (tlsUnique: Buffer): string => tlsUnique.toString('base64');
