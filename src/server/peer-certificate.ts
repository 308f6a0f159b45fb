// The TLS client certificate, looked at once per connection (keep-alive reuses it).
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { OID } from '../est/oids.js';
import { issuedBy } from '../pki/issued-by.js';
import type { PeerCertificate } from './state.js';

const seen = new WeakMap<TLSSocket, PeerCertificate | null>();
const PARTIAL_CHAIN_ERRORS = new Set(['UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);
const MAX_DEPTH = 8;

export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const hit = seen.get(socket);
  if (hit !== undefined) return hit ?? undefined;
  const x = socket.getPeerX509Certificate?.();
  let peer: PeerCertificate | null = null;
  if (x) {
    // what the client sent (and OpenSSL found); only a source of candidate
    // intermediates: chainsTo checks every link's signature itself
    const chain: Buffer[] = [];
    let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    while (c && c.raw && chain.length < 10) {
      chain.push(c.raw);
      if (!c.issuerCertificate || c.issuerCertificate === c) break;
      c = c.issuerCertificate;
    }
    const subject = x.subject.split('\n').reverse().join(',');
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1] ?? subject;
    // Node 20's TLS server cannot take allowPartialTrustChain, so OpenSSL fails a
    // chain that ends in an intermediate anchor (a manufacturer's issuing CA) for
    // want of its root; chainsTo then decides, checking every link itself.
    const partial = PARTIAL_CHAIN_ERRORS.has(String(socket.authorizationError));
    const issuer = x.issuer.split('\n').reverse().join(',');
    peer = { der: x.raw, x509: x, chain, verified: socket.authorized || partial, isRa: (x.keyUsage ?? []).includes(OID.cmcRA), subject, issuer, cn, trust: new Map() };
    if (!socket.authorized && socket.authorizationError) peer.verifyError = String(socket.authorizationError);
  }
  seen.set(socket, peer);
  return peer ?? undefined;
}

const caIssued = (child: X509Certificate, parent: X509Certificate) => parent.ca && issuedBy(child, parent);
const validNow = (x: X509Certificate, now: number) => Date.parse(x.validFrom) <= now && now <= Date.parse(x.validTo);

/**
 * Does the client certificate chain, link by verified link, to one of these
 * anchors? OpenSSL verified the chain against the union of every label's
 * anchors; this decides which label's anchors that path really goes through.
 * Memoised per connection.
 */
export function chainsTo(peer: PeerCertificate, anchors: Buffer[], key: string): boolean {
  if (!peer.verified) return false;
  const memo = peer.trust.get(key);
  if (memo !== undefined) return memo;
  const anchorCerts = anchors.map((a) => new X509Certificate(a));
  const intermediates = peer.chain.slice(1).map((d) => new X509Certificate(d));
  const now = Date.now();
  let cur = peer.x509;
  let ok = false;
  for (let depth = 0; depth < MAX_DEPTH && !ok; depth++) {
    if (!validNow(cur, now)) break;
    if (anchors.some((a) => a.equals(cur.raw)) || anchorCerts.some((a) => validNow(a, now) && caIssued(cur, a))) ok = true;
    else {
      const next = intermediates.find((i) => !i.raw.equals(cur.raw) && caIssued(cur, i));
      if (!next) break;
      cur = next;
    }
  }
  peer.trust.set(key, ok);
  return ok;
}
