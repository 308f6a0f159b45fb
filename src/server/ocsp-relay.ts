// A forwarding layer's OCSP for the CAs above it: the request goes to the
// parent (GET /ocsp/BASE64URL: RFC 6960 A.1 with base64url, which needs no
// escaping, so any request we accepted fits the parent's path limit) through the same upstream
// connection as the CRL fetch, and the answer goes down only when a CA this
// layer knows signed it for exactly the CertIDs asked (and the nonce, when one
// was sent): a compromised parent link cannot hand a device below a forged
// `good`. Parent down, slow or nonsensical: tryLater, never a made-up status.
// What anyone who can open a TCP connection can make others wait for is
// bounded: at most MAX_IN_FLIGHT relays at a time (the rest get tryLater at
// once), each within the upstream timeout; answers without a nonce are cached
// in memory until their nextUpdate, at most CACHE_MAX_MS.
import { EstError } from '../errors.js';
import { type OcspRequest, certIdNamesIssuer, ocspErrorResponse, parseOcspResponse, signedByCa } from '../est/ocsp.js';
import type { Logger } from '../util/log.js';
import type { OcspUpstream } from './ocsp.js';
import { caFields } from './revocation.js';
import type { ResourceClient } from './upstream-crls.js';

/** Relays waiting on parents at once, per layer. */
export const MAX_IN_FLIGHT = 16;
/** How long a relayed answer is reused at most, even when its nextUpdate is later: a revocation at the top shows within this. */
export const CACHE_MAX_MS = 60_000;
const CACHE_ENTRIES = 4096;

export interface OcspParent {
  /** The parent's origin, for log lines. */
  parent: string;
  client: ResourceClient;
  /** Every CA certificate this layer knows for this parent: chains and trust anchors. */
  knownCas: () => Buffer[];
}

export interface OcspRelayOptions {
  parents: OcspParent[];
  logger: Logger;
  now?: () => number;
}

export class OcspRelay implements OcspUpstream {
  private inFlight = 0;
  private readonly cache = new Map<string, { der: Buffer; until: number }>();
  private readonly now: () => number;

  constructor(private readonly o: OcspRelayOptions) {
    this.now = o.now ?? Date.now;
  }

  async relay(req: OcspRequest, der: Buffer): Promise<Buffer> {
    // the CA the CertIDs name must be one this layer knows: its key is what the answer is checked against
    let route: { parent: OcspParent; ca: Buffer } | undefined;
    for (const parent of this.o.parents) {
      const ca = parent.knownCas().find((c) => {
        // read once per certificate, not per request; an anchor from [upstream] trust our reader does not take names no CA here
        const f = caFields(c);
        return f !== undefined && req.certIds.every((id) => certIdNamesIssuer(id, f.subjectDer, f.spki));
      });
      if (ca) {
        route = { parent, ca };
        break;
      }
    }
    if (!route) return ocspErrorResponse('unauthorized');
    const key = req.nonce ? undefined : der.toString('base64');
    if (key) {
      const hit = this.cache.get(key);
      if (hit && hit.until > this.now()) return hit.der;
      if (hit) this.cache.delete(key);
    }
    if (this.inFlight >= MAX_IN_FLIGHT) return ocspErrorResponse('tryLater');
    this.inFlight++;
    try {
      const res = await route.parent.client.getResource(`/ocsp/${der.toString('base64url')}`);
      if (res.status !== 200) throw new EstError('badGateway', `HTTP ${res.status}`);
      const { der: out, until } = this.check(req, res.body, route.ca);
      if (key && until !== undefined) this.remember(key, out, until);
      return out;
    } catch (e) {
      this.o.logger.warn({ parent: route.parent.parent, reason: (e as Error).message }, 'OCSP relay to the parent failed: answering tryLater');
      return ocspErrorResponse('tryLater');
    } finally {
      this.inFlight--;
    }
  }

  /** The parent's answer, if it may go down: unsigned error statuses carry no status to forge and pass; a signed one must hold up. */
  private check(req: OcspRequest, body: Buffer, ca: Buffer): { der: Buffer; until?: number } {
    const parsed = parseOcspResponse(body);
    if (parsed.status !== 'successful') {
      if (parsed.status === 'internalError' || parsed.status === 'tryLater') throw new EstError('badGateway', `the parent answered ${parsed.status}`);
      return { der: body };
    }
    const b = parsed.basic;
    if (!signedByCa(b, ca)) throw new EstError('badGateway', 'the answer is not signed by the CA it speaks for');
    if (b.responses.length !== req.certIds.length || !req.certIds.every((id) => b.responses.some((r) => r.certId.der.equals(id.der)))) {
      throw new EstError('badGateway', 'the answer is not about the certificates asked about');
    }
    if (req.nonce && !b.nonce?.equals(req.nonce)) throw new EstError('badGateway', 'the answer does not carry the nonce sent');
    const now = this.now();
    if (b.responses.some((r) => r.thisUpdate.getTime() > now + 300_000 || (r.nextUpdate && r.nextUpdate.getTime() <= now))) {
      throw new EstError('badGateway', 'the answer is not current');
    }
    // `unknown` is not kept: the certificate may be on record at the parent a moment later
    if (b.responses.some((r) => r.cert.status === 'unknown' || !r.nextUpdate)) return { der: body };
    const until = Math.min(now + CACHE_MAX_MS, ...b.responses.map((r) => r.nextUpdate!.getTime()));
    return { der: body, until };
  }

  private remember(key: string, der: Buffer, until: number): void {
    if (this.cache.size >= CACHE_ENTRIES) {
      const now = this.now();
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
      // still full: drop the oldest, so that a flood of distinct requests cannot grow memory
      if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, { der, until });
  }
}
