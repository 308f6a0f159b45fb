// A forwarding layer's copy of its parent's CRLs, carried down the way CA
// chains are: fetched through the same upstream connection (TLS identity,
// trust, timeouts), each verified against a CA certificate this layer knows,
// shared by the replicas through the cache (one replica fetches at a time,
// CaChainService), served while the parent is down and refreshed on an
// interval. Parsed when they change, never per request.
import type { CaChainCache } from '../cache/index.js';
import { CaChainService } from '../cache/index.js';
import { EstError } from '../errors.js';
import { type ParsedCrl, crlSignedBy, parseCrl } from '../est/crl.js';
import { MAX_INDEX_ENTRIES, crlIndexNames } from '../est/crl-index.js';
import { Tag, children, decodeString, expectTag, readWhole, seq, utf8, whole } from '../est/der.js';
import type { Logger } from '../util/log.js';

/** One CRL this layer holds from its parent. */
export interface HeldCrl {
  /** As the parent serves it: /crl/NAME.crl. */
  name: string;
  crl: ParsedCrl;
  /** Issuer name DER and key identifier (hex): what a certificate's issuer and AKI are matched on. */
  key: string;
}

/** What this needs of an EST client: a GET at the parent's origin. */
export interface ResourceClient {
  getResource(path: string): Promise<{ status: number; body: Buffer }>;
  close(): void;
}

export interface UpstreamCrlsOptions {
  /** The parent's origin: names it in the cache and in log lines. */
  parent: string;
  client: ResourceClient;
  cache: CaChainCache;
  /** [upstream] crl_refresh. */
  refreshMs: number;
  /** The oldest copy served while the parent is unreachable ([upstream] cacerts_max_stale). */
  maxStaleMs: number;
  lockTtlMs: number;
  /** Every CA certificate this layer knows: its labels' chains (the parent's /cacerts) and trust anchors. */
  knownCas: () => Buffer[];
  /** Called when the CRLs held changed. */
  onChange?: () => void;
  logger: Logger;
  now?: () => number;
}

/** Answers of a parent that has no /crl/ at all. */
const NO_CRLS = new Set([404, 405, 501]);
const MAX_WARNED = 1024;

export const issuerKey = (issuerDer: Buffer, keyId: Buffer | undefined): string => `${issuerDer.toString('hex')}/${keyId?.toString('hex') ?? ''}`;

// Each CRL in the shared cache: SEQUENCE { UTF8String name, CertificateList }.
const encodeItem = (h: HeldCrl) => seq(utf8(h.name), h.crl.der);
function decodeItem(b: Buffer): { name: string; der: Buffer } {
  const parts = children(b, expectTag(readWhole(b, 'cached CRL'), Tag.SEQUENCE, 'cached CRL'));
  if (parts.length !== 2) throw new EstError('malformed', 'invalid cached CRL');
  return { name: decodeString(b, parts[0]!), der: Buffer.from(whole(b, parts[1]!)) };
}

export class UpstreamCrls {
  private held: HeldCrl[] = [];
  private items: Buffer[] = [];
  private readonly service: CaChainService;
  private readonly warned = new Set<string>();
  private lastForced = -Infinity;
  private readonly now: () => number;

  constructor(private readonly o: UpstreamCrlsOptions) {
    this.now = o.now ?? Date.now;
    this.service = new CaChainService(o.cache, {
      refreshAfterMs: o.refreshMs, maxStaleMs: o.maxStaleMs, lockTtlMs: o.lockTtlMs, logger: o.logger, what: 'CRLs', allowEmpty: true,
    });
    this.service.register(o.parent, () => this.fetch());
  }

  get parent(): string {
    return this.o.parent;
  }

  /** The connection to the parent, for OCSP relayed there (src/server/ocsp-relay.ts). */
  get client(): ResourceClient {
    return this.o.client;
  }

  /** Every CA certificate this layer knows for this parent: what the parent's CRLs and OCSP answers are checked against. */
  knownCas(): Buffer[] {
    return this.o.knownCas();
  }

  crls(): readonly HeldCrl[] {
    return this.held;
  }

  /**
   * Takes what the cache holds (another replica may have fetched it) and, when
   * it is crl_refresh old, has it refreshed in the background. A CRL due
   * (within crl_refresh of its nextUpdate, or past it) is asked for at once, at
   * most once per crl_refresh. Never throws:
   * the service logs an outage once, and the last good CRLs stay.
   */
  async sync(): Promise<void> {
    try {
      this.adopt(await this.service.get(this.o.parent));
    } catch {
      // logged by the service; what we hold stays
    }
    const now = this.now();
    if (this.held.some((h) => h.crl.nextUpdate.getTime() - this.o.refreshMs <= now) && now - this.lastForced >= this.o.refreshMs) {
      this.lastForced = now;
      try {
        this.adopt(await this.service.refreshNow(this.o.parent));
      } catch {
        // the parent is down: the stale policy decides
      }
    }
  }

  async close(): Promise<void> {
    await this.service.close();
    this.o.client.close();
  }

  /** GET /crl/ at the parent, then each CRL it lists; what passes accept() goes to the cache. */
  private async fetch(): Promise<Buffer[]> {
    const res = await this.o.client.getResource('/crl/');
    // a parent that serves no CRLs (libest, est-gateway before 0.2): none known, nothing checked against them
    if (NO_CRLS.has(res.status)) return this.accept([]).map(encodeItem);
    if (res.status !== 200) throw new EstError('badGateway', `GET /crl/ at the parent: HTTP ${res.status}`);
    const names = crlIndexNames(res.body);
    const fetched = await Promise.all(
      names.map(async (name) => {
        const r = await this.o.client.getResource(`/crl/${name}.crl`);
        if (r.status === 200) return { name, der: r.body };
        this.warnOnce(`status:${name}:${r.status}`, { crl: name, status: r.status }, 'the parent lists a CRL it does not serve');
        return undefined;
      }),
    );
    return this.accept(fetched.filter((f) => f !== undefined)).map(encodeItem);
  }

  /** A new answer, from the parent or the cache: adopted when it differs from what we hold. */
  private adopt(items: Buffer[]): void {
    if (items.length === this.items.length && items.every((b, i) => b.equals(this.items[i]!))) return;
    const decoded: Array<{ name: string; der: Buffer }> = [];
    for (const b of items) {
      try {
        decoded.push(decodeItem(b));
      } catch {
        this.warnOnce(`cache:${b.length}`, {}, 'ignoring a malformed CRL in the cache');
      }
    }
    this.held = this.accept(decoded);
    this.items = items;
    this.o.onChange?.();
  }

  /**
   * Parses and verifies each CRL against the CAs this layer knows; one whose
   * cRLNumber goes backwards is refused for the one held. A CRL held but no
   * longer listed is kept until its nextUpdate: a parent (or a Redis) that
   * drops a CRL must not drop the revocations in it.
   */
  private accept(candidates: Array<{ name: string; der: Buffer }>): HeldCrl[] {
    const known = this.o.knownCas();
    const previous = new Map(this.held.map((h) => [h.key, h]));
    const out = new Map<string, HeldCrl>();
    for (const c of candidates.slice(0, MAX_INDEX_ENTRIES)) {
      let crl: ParsedCrl;
      try {
        crl = parseCrl(c.der);
      } catch (e) {
        this.warnOnce(`parse:${c.name}:${(e as Error).message}`, { crl: c.name, reason: (e as Error).message }, 'dropping a CRL from the parent that cannot be used');
        continue;
      }
      if (!known.some((ca) => crlSignedBy(crl, ca))) {
        this.warnOnce(`signer:${c.name}:${crl.number}`, { crl: c.name }, 'dropping a CRL from the parent that no CA this layer knows signed');
        continue;
      }
      const key = issuerKey(crl.issuerDer, crl.keyId);
      const held = previous.get(key);
      if (held && crl.number < held.crl.number) {
        this.warnOnce(`back:${key}:${crl.number}`, { crl: c.name, number: String(crl.number), held: String(held.crl.number) }, 'refusing a CRL whose number goes backwards; keeping the newer one');
        out.set(key, held);
        continue;
      }
      out.set(key, { name: c.name, crl, key });
    }
    const now = this.now();
    for (const [key, h] of previous) if (!out.has(key) && h.crl.nextUpdate.getTime() > now) out.set(key, h);
    return [...out.values()];
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    // a parent answering ever new nonsense must not grow this without bound
    if (this.warned.size >= MAX_WARNED) this.warned.clear();
    this.warned.add(key);
    this.o.logger.warn({ parent: this.o.parent, ...fields }, msg);
  }
}
