// Forward, and when the parent cannot be reached issue from this layer's own
// sub-CA: islanded operation. Refusals from a reachable parent stay refusals.
import { type EstErrorKind, isEstError } from '../errors.js';
import { directlyIssuedBy } from '../pki/issued-by.js';
import type { ForwardIssuer } from './forward-issuer.js';
import type { EnrollRequest, Issuer, IssuedResult, ServerKeygenResult } from './issuer.js';
import type { LocalIssuer } from './local-issuer.js';

const ISLAND_KINDS: EstErrorKind[] = ['unavailable', 'upstreamTimeout'];

export class FallbackIssuer implements Issuer {
  readonly mode = 'fallback' as const;

  constructor(
    private readonly parent: ForwardIssuer,
    private readonly local: LocalIssuer,
    private readonly onIsland: (op: string, reason: string) => void = () => {},
  ) {}

  /**
   * The parent's chain plus our sub-CA's, so certificates issued either way
   * chain to the root. Throws when the parent is down: the chain cache then
   * serves the last complete chain; `localChain` is for a cold start islanded.
   */
  async caCerts(): Promise<Buffer[]> {
    const out = [...(await this.local.caCerts())];
    for (const c of await this.parent.caCerts()) if (!out.some((o) => o.equals(c))) out.push(c);
    return out;
  }

  localChain(): Promise<Buffer[]> {
    return this.local.caCerts();
  }

  enroll(req: EnrollRequest): Promise<IssuedResult> {
    return this.either(req, () => this.parent.enroll(this.upstreamRequest(req)), () => this.local.enroll(req, { islanded: true }));
  }

  serverKeygen(req: EnrollRequest): Promise<ServerKeygenResult> {
    return this.either(req, () => this.parent.serverKeygen(req), () => this.local.serverKeygen(req, { islanded: true }));
  }

  /**
   * A certificate our own sub-CA issued (while islanded) means nothing to the
   * parent, which refuses to renew what it did not issue: its renewal goes up
   * as a simpleenroll, vouched for by this RA (it verified the certificate and
   * its names downstream), so the device returns under the parent's CA.
   */
  private upstreamRequest(req: EnrollRequest): EnrollRequest {
    if (req.op !== 'simplereenroll' || !req.currentCert) return req;
    if (!directlyIssuedBy(req.currentCert, [this.local.ca.certDer, ...(this.local.ca.previous ?? [])])) return req;
    const { currentCert: _renewed, ...rest } = req;
    return { ...rest, op: 'simpleenroll' };
  }

  private islanded(e: unknown): boolean {
    return ISLAND_KINDS.some((k) => isEstError(e, k));
  }

  private async either<T extends IssuedResult>(req: EnrollRequest, up: () => Promise<T>, here: () => Promise<T>): Promise<T> {
    try {
      return await up();
    } catch (e) {
      if (!this.islanded(e)) throw e;
      this.onIsland(req.op, (e as Error).message);
      return { ...(await here()), islanded: true };
    }
  }
}
