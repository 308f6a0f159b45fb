// The one place that answers "is this chain revoked?": every certificate of a
// client's chain (leaf, then each CA up to the anchor) against the CRL of its
// issuer, matched on issuer name and key identifier. A local CA answers from
// the ledger (revocations by `estgw certs revoke` in another process show at
// once); any other CA from the CRLs fetched from the parent. Per request this
// is a hash lookup per certificate: the chain is worked out once per
// connection (or relayed certificate), the CRLs are parsed when fetched.
import { EstError, forbidden } from '../errors.js';
import type { CertFields } from '../est/certificate.js';
import { parseCertificate } from '../est/certificate.js';
import { type CrlRevoked, decodeAkiKeyId, serialKey } from '../est/crl.js';
import { formatName } from '../est/name.js';
import { OID } from '../est/oids.js';
import type { Ledger } from '../ledger/ledger.js';
import type { CaMaterial } from '../pki/ca.js';
import type { Logger } from '../util/log.js';
import { type HeldCrl, type UpstreamCrls, issuerKey } from './upstream-crls.js';

/** One certificate of a chain as revocation sees it. */
export interface ChainLink {
  serialHex: string;
  issuerDer: Buffer;
  issuerHex: string;
  /** The certificate's authorityKeyIdentifier, else its issuer's subjectKeyIdentifier. */
  keyId?: Buffer;
  /** RFC 4514 subject, to name a CA of the chain in a refusal. */
  subject: string;
}

export type StalePolicy = 'open' | 'closed';

export interface RevocationOptions {
  ledger?: Ledger;
  upstream: UpstreamCrls[];
  /** [server] crl_stale: a CRL past its nextUpdate lets the chain through (open) or refuses it with 503 (closed). */
  stale: StalePolicy;
  logger: Logger;
  /** A CRL past its nextUpdate let a chain through (fail open). */
  onStaleAccepted?: (crl: string) => void;
  now?: () => number;
}

interface FetchedEntry {
  held: HeldCrl;
  revoked: Map<string, CrlRevoked>;
}

const MAX_DEPTH = 8;
/** Seconds a client refused for want of a fresh CRL is told to wait. */
const STALE_RETRY_AFTER_S = 60;

const fieldsMemo = new WeakMap<Buffer, CertFields | null>();
/** Our codec's reading of a CA certificate, once per Buffer (label anchors are long-lived); undefined when it does not read. */
export function caFields(der: Buffer): CertFields | undefined {
  let f = fieldsMemo.get(der);
  if (f === undefined) {
    try {
      f = parseCertificate(der);
    } catch {
      f = null;
    }
    fieldsMemo.set(der, f);
  }
  return f ?? undefined;
}

function akiOf(f: CertFields): Buffer | undefined {
  const ext = f.extensions.find((e) => e.oid === OID.authorityKeyIdentifier);
  if (!ext) return undefined;
  try {
    return decodeAkiKeyId(ext.value);
  } catch {
    return undefined;
  }
}

/**
 * The chain above `leaf` as far as `candidates` (what the client sent, the
 * label's anchors and the parent's chain) continue it, linked by name and key
 * identifier. Signatures are authentication's business (chainsTo): this only
 * needs to know which CRL speaks for each certificate. Self-issued
 * certificates (the anchors) are not checked: no CRL of theirs can revoke them.
 */
export function chainLinks(leaf: CertFields, candidates: Buffer[]): ChainLink[] {
  const links: ChainLink[] = [];
  let cur: CertFields = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (cur.issuerDer.equals(cur.subjectDer)) break;
    const aki = akiOf(cur);
    let issuer: CertFields | undefined;
    for (const c of candidates) {
      const f = caFields(c);
      if (f && f !== cur && f.subjectDer.equals(cur.issuerDer) && (!aki || !f.subjectKeyId || f.subjectKeyId.equals(aki))) {
        issuer = f;
        break;
      }
    }
    const keyId = aki ?? issuer?.subjectKeyId;
    links.push({ serialHex: serialKey(cur.serial), issuerDer: cur.issuerDer, issuerHex: cur.issuerDer.toString('hex'), ...(keyId ? { keyId } : {}), subject: formatName(cur.subject) });
    if (!issuer) break;
    cur = issuer;
  }
  return links;
}

export class RevocationAuthority {
  /** Subject DER (hex) of the local CAs. */
  private localNames = new Set<string>();
  private fetched = new Map<string, FetchedEntry>();
  private fetchedByName = new Map<string, FetchedEntry[]>();
  private readonly warnedStale = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly o: RevocationOptions) {
    this.now = o.now ?? Date.now;
    this.rebuild();
  }

  /** The local CAs whose revocations the ledger holds (again after a reload). */
  setLocalCas(cas: Map<string, CaMaterial>): void {
    this.localNames = new Set([...cas.values()].map((c) => c.fields.subjectDer.toString('hex')));
  }

  /** Rebuilds the lookup tables from the CRLs fetched from the parents (when they change). */
  rebuild(): void {
    const fetched = new Map<string, FetchedEntry>();
    const byName = new Map<string, FetchedEntry[]>();
    for (const u of this.o.upstream) {
      for (const held of u.crls()) {
        if (fetched.has(held.key)) continue;
        const entry = { held, revoked: new Map(held.crl.revoked.map((r) => [r.serialHex, r])) };
        fetched.set(held.key, entry);
        const name = held.crl.issuerDer.toString('hex');
        byName.set(name, [...(byName.get(name) ?? []), entry]);
      }
    }
    this.fetched = fetched;
    this.fetchedByName = byName;
  }

  /**
   * Throws `forbidden` naming the certificate, its serial, the date and the
   * reason when any certificate of the chain is revoked; with crl_stale =
   * closed, `unavailable` (503) when the CRL that would say is past nextUpdate.
   * `what` names the leaf: "client certificate", "RA certificate", "certificate being renewed".
   */
  assertNotRevoked(links: ChainLink[], what: string): void {
    links.forEach((link, i) => {
      const who = i === 0 ? `the ${what}` : `the ${what}'s issuing CA "${link.subject}"`;
      const hit = this.revocation(link);
      if (hit) throw forbidden(`${who} (serial ${link.serialHex}) was revoked on ${hit.at}: ${hit.reason}`);
    });
  }

  /**
   * Why a local CA may sign nothing, or undefined: its certificate, or a CA
   * above it, is on a CRL its parent publishes (a sub-CA revoked at the top).
   * A stale CRL counts as it says; it never makes a CA unusable by itself.
   */
  caRevocation(ca: CaMaterial): string | undefined {
    let links = caLinks.get(ca);
    if (!links) caLinks.set(ca, (links = chainLinks(ca.fields, ca.chain.slice(1))));
    for (const link of links) {
      const hit = this.revocation(link, false);
      if (hit) return `this layer's CA "${ca.name}"${link.subject === formatName(ca.fields.subject) ? '' : ` (through "${link.subject}")`} (serial ${link.serialHex}) was revoked by its parent on ${hit.at}: ${hit.reason}`;
    }
    return undefined;
  }

  /** The local issuer's check before it signs: 503, as the layer cannot issue from this CA at all. */
  assertCaUsable(ca: CaMaterial): void {
    const why = this.caRevocation(ca);
    if (why) throw new EstError('unavailable', `${why}; it signs nothing more`);
  }

  /** The revocation of one certificate, if any, by the CRL (or ledger) of its issuer. */
  private revocation(link: ChainLink, judgeStale = true): { at: string; reason: string } | undefined {
    // by name, as the ledger records revocations: a replaced sub-CA key's certificates are still ours
    if (this.o.ledger && this.localNames.has(link.issuerHex)) {
      const r = this.o.ledger!.store.revocationsOf(link.serialHex).find((h) => h.issuerName === link.issuerHex);
      return r && { at: r.at, reason: r.reason };
    }
    const entry = this.fetched.get(issuerKey(link.issuerDer, link.keyId)) ?? (link.keyId ? undefined : only(this.fetchedByName.get(link.issuerHex)));
    // no CRL known for this issuer (a parent that serves none): nothing to check against
    if (!entry) return undefined;
    const crl = entry.held.crl;
    if (judgeStale && crl.nextUpdate.getTime() <= this.now()) this.stale(entry.held);
    const r = entry.revoked.get(link.serialHex);
    return r && { at: r.revokedAt.toISOString(), reason: r.reason };
  }

  private stale(held: HeldCrl): void {
    const next = held.crl.nextUpdate.toISOString();
    if (this.o.stale === 'closed') {
      throw new EstError('unavailable', `the CRL "${held.name}" is past its nextUpdate (${next}), so revocation cannot be checked; retry later`, { retryAfter: STALE_RETRY_AFTER_S });
    }
    this.o.onStaleAccepted?.(held.name);
    const once = `${held.key}#${held.crl.number}`;
    if (this.warnedStale.has(once)) return;
    if (this.warnedStale.size >= 1024) this.warnedStale.clear();
    this.warnedStale.add(once);
    this.o.logger.warn({ crl: held.name, number: String(held.crl.number), nextUpdate: next }, 'CRL past its nextUpdate: checking against it anyway (crl_stale = "open")');
  }
}

const only = <T>(a: T[] | undefined): T | undefined => (a?.length === 1 ? a[0] : undefined);
/** A local CA's chain as revocation sees it, worked out once per CA (a reload brings new ones). */
const caLinks = new WeakMap<CaMaterial, ChainLink[]>();
