// What GET /crl/ and /crl/NAME.crl serve at this layer: the local CAs' CRLs
// (signed from the ledger) and the CRLs fetched from the parent, under the
// names the parent gave them, so a layer below finds every CRL of its chain at
// the layer it can reach. A local CA whose name an upstream CRL also uses wins:
// the upstream one is left out of this layer's index (logged once).
import { formatName, parseNameDer } from '../est/name.js';
import type { CrlIndexEntry } from '../est/crl-index.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../util/log.js';
import type { HeldCrl, UpstreamCrls } from './upstream-crls.js';

export class ServedCrls {
  private readonly warned = new Set<string>();

  constructor(
    private readonly ledger: Ledger | undefined,
    private readonly upstream: UpstreamCrls[],
    private readonly logger: Logger,
  ) {}

  /** Whether this layer has any CRL to serve at all. */
  get any(): boolean {
    return this.ledger !== undefined || this.upstream.length > 0;
  }

  isLocal(name: string): boolean {
    return this.ledger?.caNames().includes(name) ?? false;
  }

  /** The fetched CRLs this layer serves, by name: local names and earlier parents win. */
  fetched(): Map<string, HeldCrl> {
    const out = new Map<string, HeldCrl>();
    for (const u of this.upstream) {
      for (const h of u.crls()) {
        if (this.isLocal(h.name) || out.has(h.name)) {
          if (!this.warned.has(h.name)) {
            this.warned.add(h.name);
            this.logger.warn({ crl: h.name, parent: u.parent }, 'an upstream CRL has the name of a local CA (or of another upstream CRL): serving ours under that name, not the upstream one');
          }
          continue;
        }
        out.set(h.name, h);
      }
    }
    return out;
  }

  /** GET /crl/: local entries first (re-signed when due), then the upstream ones. Throws when the ledger cannot be read. */
  index(): CrlIndexEntry[] {
    const local = this.ledger?.crlIndex() ?? [];
    const upstream = [...this.fetched().values()].map((h) => ({
      name: h.name,
      issuer: formatName(parseNameDer(h.crl.issuerDer)),
      keyId: h.crl.keyId?.toString('hex') ?? '',
      number: Number(h.crl.number),
      thisUpdate: h.crl.thisUpdate.toISOString(),
      nextUpdate: h.crl.nextUpdate.toISOString(),
    }));
    return [...local, ...upstream];
  }

  /** A local CA's current CRL (re-signed first when due). */
  localCrl(name: string): Buffer | undefined {
    return this.ledger?.crl(name);
  }

  /** An upstream CRL's DER, as the parent signed it. */
  upstreamCrl(name: string): Buffer | undefined {
    return this.fetched().get(name)?.crl.der;
  }

  /** nextUpdate of every CRL served, by name, for /readyz and metrics. */
  status(): Map<string, { thisUpdate: Date; nextUpdate: Date } | undefined> {
    const out = new Map(this.ledger?.crlStatus() ?? []);
    for (const [name, h] of this.fetched()) out.set(name, { thisUpdate: h.crl.thisUpdate, nextUpdate: h.crl.nextUpdate });
    return out;
  }
}
