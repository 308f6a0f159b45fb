// A revoked certificate, or one below a revoked CA, never speaks for anyone
// here again: not as a client or RA on any label, not as the certificate being
// renewed (in TLS or in an RA's Client-Cert), so it can neither renew nor
// enroll another one. The RevocationAuthority answers for the whole chain,
// from the ledger (local CAs) and the CRLs fetched from the parent.
import type { Context, Next } from 'koa';
import { type CertFields, parseCertificate } from '../../est/certificate.js';
import type { Label } from '../label.js';
import { type ChainLink, chainLinks } from '../revocation.js';
import type { Services } from '../services.js';
import type { EstState, PeerCertificate } from '../state.js';

type Ctx = Context & { state: EstState };

/** Every CA certificate this label knows that could continue a chain. */
const candidates = (label: Label, sent: Buffer[]) => [...sent, ...label.issuingCas, ...label.clientAnchors, ...label.raAnchors];

// once per connection (keep-alive reuses it) and label: the certificate is parsed once
const peerLinks = new WeakMap<PeerCertificate, Map<string, ChainLink[]>>();
const peerFields = new WeakMap<PeerCertificate, CertFields>();

/** The TLS client certificate's chain as revocation sees it; also for the [[proxy]] routes, with their anchors. */
export function linksOfPeer(peer: PeerCertificate, key: string, anchors: Buffer[]): ChainLink[] {
  let byKey = peerLinks.get(peer);
  if (!byKey) peerLinks.set(peer, (byKey = new Map()));
  let links = byKey.get(key);
  if (!links) {
    let fields = peerFields.get(peer);
    if (!fields) peerFields.set(peer, (fields = parseCertificate(peer.der)));
    // the layer's own CA certificates first: one the client sent under the same name must not choose which CRL speaks
    byKey.set(key, (links = chainLinks(fields, [...anchors, ...peer.chain.slice(1)])));
  }
  return links;
}

const labelLinks = (peer: PeerCertificate, label: Label) => linksOfPeer(peer, `label:${label.name}`, candidates(label, []));

/** After authentication: the client certificate that authenticated, and its chain. */
export function refuseRevokedClient(s: Services) {
  return async function notRevokedClient(ctx: Ctx, next: Next): Promise<void> {
    const { identity, peer, label } = ctx.state;
    if (s.revocation && identity?.kind === 'cert' && peer) s.revocation.assertNotRevoked(labelLinks(peer, label!), identity.role === 'ra' ? 'RA certificate' : 'client certificate');
    await next();
  };
}

/** After checkReenrollIdentity: the certificate being renewed, relayed or in TLS (on a Basic-only label it authenticated nothing). */
export function refuseRevokedRenewal(s: Services) {
  return async function notRevokedRenewal(ctx: Ctx, next: Next): Promise<void> {
    const { currentCert, currentFields, peer, label } = ctx.state;
    if (s.revocation && currentCert) {
      const links = peer && currentCert === peer.der
        ? labelLinks(peer, label!)
        : chainLinks(currentFields ?? parseCertificate(currentCert), candidates(label!, []));
      s.revocation.assertNotRevoked(links, 'certificate being renewed');
    }
    await next();
  };
}
