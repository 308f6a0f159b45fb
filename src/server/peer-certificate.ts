// The TLS client certificate, looked at once per connection (keep-alive reuses it).
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { OID } from '../est/oids.js';
import type { PeerCertificate } from './state.js';

const seen = new WeakMap<TLSSocket, PeerCertificate | null>();

export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const hit = seen.get(socket);
  if (hit !== undefined) return hit ?? undefined;
  const x = socket.getPeerX509Certificate?.();
  let peer: PeerCertificate | null = null;
  if (x) {
    const chain: Buffer[] = [];
    let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    while (c && c.raw && chain.length < 10) {
      chain.push(c.raw);
      if (!c.issuerCertificate || c.issuerCertificate === c) break;
      c = c.issuerCertificate;
    }
    const subject = x.subject.split('\n').reverse().join(',');
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1] ?? subject;
    peer = {
      der: x.raw,
      chain,
      verified: socket.authorized,
      isRa: (x.keyUsage ?? []).includes(OID.cmcRA),
      subject,
      cn,
    };
    if (!socket.authorized && socket.authorizationError) peer.verifyError = String(socket.authorizationError);
  }
  seen.set(socket, peer);
  return peer ?? undefined;
}

/** Did OpenSSL's verified chain pass through one of these anchors? */
export function chainsTo(peer: PeerCertificate, anchors: Buffer[]): boolean {
  return peer.verified && peer.chain.some((c) => anchors.some((a) => a.equals(c)));
}
