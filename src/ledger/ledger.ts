// Certificate lifecycle at a signing layer: every certificate this layer's CAs
// sign goes on record before it leaves the process, revocation goes through
// here (gateway and `estgw certs` alike), and each local CA's CRL is signed
// from the revocations on record.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { EstError } from '../errors.js';
import type { CrlIndexEntry } from '../est/crl-index.js';
import { parseCertificate } from '../est/certificate.js';
import { type Rdns, formatName, parseGeneralNames, parseNameDer } from '../est/name.js';
import { caKeyIdentifier, describeKey, describeSpki, type KeyInfo } from '../est/spki.js';
import { OID } from '../est/oids.js';
import { issuedBy } from '../pki/issued-by.js';
import type { CaMaterial } from '../pki/ca.js';
import { type RevocationReason, buildCrl } from '../pki/crl.js';
import { serialHex } from '../pki/issuance.js';
import { type Identity, identityString } from '../policy/identity.js';
import { parseDurationMs } from '../util/durations.js';
import { LmdbLedgerStore } from './lmdb-store.js';
import type { CertificateRecord, CrlState, LedgerStore, RevokedEntry } from './store.js';

export const LEDGER_DIR = 'ledger';
export const ledgerPath = (dataDir: string): string => join(dataDir, LEDGER_DIR);

/** A local CA as the ledger signs CRLs for it. */
export interface LedgerCa {
  material: CaMaterial;
  crlValidityMs: number;
}

/** The ledger's view of the configured local CAs: key material and CRL validity. */
export function ledgerCas(cfg: Pick<Config, 'cas'>, cas: Map<string, CaMaterial>): Map<string, LedgerCa> {
  return new Map([...cas].map(([name, material]) => [name, { material, crlValidityMs: parseDurationMs(cfg.cas[name]?.crl_validity ?? '7d') }]));
}

/** What a signer knows about a certificate it just signed. */
export interface IssuanceInput {
  ca: CaMaterial;
  der: Buffer;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  subject: Rdns;
  subjectAltNameDer?: Buffer;
  key: KeyInfo;
  caCert: boolean;
  label: string;
  op: string;
  identity: Identity;
  /** simplereenroll: the certificate renewed. */
  currentCert?: Buffer;
  /** currentCert came in an RA's Client-Cert header. */
  relayed?: boolean;
  islanded: boolean;
}

export interface LedgerOptions {
  /** Called once a certificate is durably on record. */
  onRecorded?: (ca: string) => void;
  now?: () => number;
  /** [server] ledger_sync. */
  sync?: 'fsync' | 'os';
}

/** Who asked for a certificate signed at setup: the layer itself. */
export const SETUP_IDENTITY = 'setup';

const wholeSeconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();
const keyIdOf = (ca: CaMaterial) => caKeyIdentifier(ca.fields).toString('hex');
/** A CA's name and key identifier as records carry them, worked out once per CA rather than per certificate. */
const caIds = new WeakMap<CaMaterial, { issuer: string; keyId: string }>();
function idsOf(ca: CaMaterial): { issuer: string; keyId: string } {
  let ids = caIds.get(ca);
  if (!ids) caIds.set(ca, (ids = { issuer: formatName(ca.fields.subject), keyId: keyIdOf(ca) }));
  return ids;
}

export class Ledger {
  private cas: Map<string, LedgerCa>;

  constructor(
    readonly store: LedgerStore,
    cas: Map<string, LedgerCa>,
    private readonly o: LedgerOptions = {},
  ) {
    this.cas = cas;
  }

  static open(dataDir: string, cas: Map<string, LedgerCa>, o: LedgerOptions = {}): Ledger {
    return new Ledger(new LmdbLedgerStore(ledgerPath(dataDir), o.sync), cas, o);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** A renewed sub-CA signs from now on: its CRL is re-signed with the new key at the next refresh. */
  setCas(cas: Map<string, LedgerCa>): void {
    this.cas = cas;
  }

  caNames(): string[] {
    return [...this.cas.keys()];
  }

  /** Durably on record, or an `unavailable` error: the caller must then not hand the certificate out. */
  async recordIssuance(i: IssuanceInput): Promise<void> {
    const current = i.currentCert ? parseCertificate(i.currentCert) : undefined;
    const rec: CertificateRecord = {
      serial: i.serialHex,
      ca: i.ca.name,
      issuer: idsOf(i.ca).issuer,
      issuerKeyId: idsOf(i.ca).keyId,
      subject: formatName(i.subject),
      sans: i.subjectAltNameDer ? parseGeneralNames(i.subjectAltNameDer).map((n) => `${n.type}:${n.value}`) : [],
      keyType: describeKey(i.key),
      // as the certificate encodes them: whole seconds
      notBefore: wholeSeconds(i.notBefore),
      notAfter: wholeSeconds(i.notAfter),
      issuedAt: new Date(this.now()).toISOString(),
      label: i.label,
      op: i.op,
      identity: identityString(i.identity),
      ...(i.identity.role === 'ra' ? { ra: identityString(i.identity) } : {}),
      ...(i.relayed && current ? { relayedFor: formatName(current.subject) } : {}),
      islanded: i.islanded,
      caCert: i.caCert,
      ...(current ? { supersedes: { serial: serialHex(current.serial), issuer: formatName(parseNameDer(current.issuerDer)) } } : {}),
      der: i.der,
    };
    try {
      await this.store.record(rec);
    } catch (e) {
      throw new EstError('unavailable', 'the issuance ledger could not record the certificate, so none is issued', { retryAfter: 30, cause: e });
    }
    this.o.onRecorded?.(i.ca.name);
  }

  /**
   * A certificate a local CA signed outside enrollment (this layer's TLS
   * certificate, a sub-CA created at setup): put on record when it is not, so
   * every certificate the CAs signed can be listed and revoked. Returns the CA
   * that signed it, or undefined when no local CA did.
   */
  async recordSetup(der: Buffer, what: { label: string; op: string }): Promise<string | undefined> {
    const x = new X509Certificate(der);
    const signer = [...this.cas].find(([, c]) => !c.material.certDer.equals(der) && issuedBy(x, c.material.cert));
    if (!signer) return undefined;
    const [ca, { material }] = signer;
    const f = parseCertificate(der);
    const serial = serialHex(f.serial);
    if (this.store.get(ca, serial)) return ca;
    const san = f.extensions.find((e) => e.oid === OID.subjectAltName)?.value;
    try {
      await this.store.record({
        serial, ca, issuer: formatName(material.fields.subject), issuerKeyId: keyIdOf(material), subject: formatName(f.subject),
        sans: san ? parseGeneralNames(san).map((n) => `${n.type}:${n.value}`) : [], keyType: describeKey(describeSpki(f.spki)),
        notBefore: f.notBefore.toISOString(), notAfter: f.notAfter.toISOString(), issuedAt: f.notBefore.toISOString(),
        label: what.label, op: what.op, identity: SETUP_IDENTITY, islanded: false, caCert: !!f.basicConstraints?.ca, der,
      });
    } catch (e) {
      // another worker recorded it first
      if (!this.store.get(ca, serial)) throw e;
    }
    // not counted in estgw_ca_certificates_issued_total: that counts what enrollment issued
    return ca;
  }

  /** Revokes one certificate and re-signs its CA's CRL in the same transaction. */
  revoke(serial: string, reason: RevocationReason, by: string, ca?: string): CertificateRecord {
    const matches = this.store.find(serial.toLowerCase().replace(/^(00)+(?=.)/, '')).filter((r) => ca === undefined || r.ca === ca);
    if (matches.length === 0) throw new EstError('notFound', `no certificate with serial ${serial}${ca ? ` from CA "${ca}"` : ''} on record`);
    if (matches.length > 1) throw new EstError('malformed', `serial ${serial} is on record for CAs ${matches.map((m) => m.ca).join(', ')}: name one with --ca`);
    const rec = matches[0]!;
    const material = this.cas.get(rec.ca)?.material;
    if (!material) throw new EstError('unavailable', `CA "${rec.ca}" is not loaded here, so its CRL cannot be signed`);
    const at = new Date(this.now()).toISOString();
    return this.store.revoke(rec.ca, rec.serial, { reason, at, by }, material.fields.subjectDer.toString('hex'), (prev, revoked) =>
      this.nextCrl(rec.ca, prev, revoked),
    );
  }

  /** The CA's current CRL (DER), re-signed first when it is due. */
  crl(name: string): Buffer | undefined {
    if (!this.cas.has(name)) return undefined;
    const s = this.store.crl(name);
    if (s && !this.due(name, s)) return s.der;
    return this.store.updateCrl(name, (prev, revoked) => (prev && !this.due(name, prev) ? undefined : this.nextCrl(name, prev, revoked)))?.der;
  }

  /** Re-signs every CRL that is missing, signed by a replaced key, or past half its validity. */
  refreshCrls(): void {
    for (const name of this.cas.keys()) this.crl(name);
  }

  /** Per local CA: certificates not revoked that expire within `windowMs` from now (expired ones not counted). */
  expiringCounts(windowMs: number): Map<string, number> {
    const now = this.now();
    const counts = this.store.expiringCounts(now, now + windowMs);
    return new Map(this.caNames().map((ca) => [ca, counts.get(ca) ?? 0]));
  }

  /** thisUpdate/nextUpdate of each local CA's stored CRL, as it is (not refreshed). */
  crlStatus(): Map<string, { thisUpdate: Date; nextUpdate: Date } | undefined> {
    const out = new Map<string, { thisUpdate: Date; nextUpdate: Date } | undefined>();
    for (const name of this.cas.keys()) {
      const s = this.store.crl(name);
      out.set(name, s && { thisUpdate: new Date(s.thisUpdate), nextUpdate: new Date(s.nextUpdate) });
    }
    return out;
  }

  /** One entry per local CA's current CRL (re-signed first when due), as GET /crl/ lists them. */
  crlIndex(): CrlIndexEntry[] {
    const out: CrlIndexEntry[] = [];
    for (const [name, ca] of this.cas) {
      this.crl(name);
      const s = this.store.crl(name);
      if (!s) continue;
      out.push({ name, issuer: formatName(ca.material.fields.subject), keyId: s.keyId, number: s.number, thisUpdate: s.thisUpdate, nextUpdate: s.nextUpdate });
    }
    return out;
  }

  /** Re-issued at half the validity, so relying parties never hold an expired one while we are up. */
  private due(name: string, s: CrlState): boolean {
    const ca = this.cas.get(name)!;
    const from = Date.parse(s.thisUpdate);
    const half = from + (Date.parse(s.nextUpdate) - from) / 2;
    return s.keyId !== keyIdOf(ca.material) || this.now() >= half;
  }

  private nextCrl(name: string, prev: CrlState | undefined, revoked: RevokedEntry[]): CrlState {
    const ca = this.cas.get(name)!;
    const now = this.now();
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + ca.crlValidityMs);
    const number = (prev?.number ?? 0) + 1;
    // RFC 5280 §3.3: an entry may go once the certificate has expired
    const entries = revoked
      .filter((r) => Date.parse(r.notAfter) > now)
      .map((r) => ({ serialHex: r.serial, revokedAt: new Date(r.at), reason: r.reason }));
    const der = buildCrl(ca.material, { number, thisUpdate, nextUpdate, entries });
    return { number, thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(), keyId: keyIdOf(ca.material), der };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
