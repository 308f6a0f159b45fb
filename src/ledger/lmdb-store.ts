// The ledger in LMDB (lmdb-js): one environment in DATA_DIR/ledger, safe for
// node:cluster workers and the `estgw certs` CLI writing at the same time.
// Writes commit in lmdb's batched write transactions; a record counts once its
// transaction is flushed to disk, so a crash never loses a certificate that
// left the process.
import { open, type Database, type RootDatabase } from 'lmdb';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Glob } from '../policy/glob.js';
import {
  type CertificateRecord, type CrlReissue, type CrlState, type LedgerStore, type ListFilter, type Revocation, type RevokedEntry, LedgerError,
} from './store.js';

// Keys are strings: serials are hex and CA names [A-Za-z0-9_-], so ':' separates
// and ';' (the next byte) ends a prefix range.
const certKey = (serial: string, ca: string) => `${serial}:${ca}`;
// notAfter (ISO, so keys sort by time) then CA and serial: a range read finds what expires in a window
const expiryKey = (r: Pick<CertificateRecord, 'notAfter' | 'ca' | 'serial'>) => `${r.notAfter}|${r.ca}|${r.serial}`;
/** Bumped when an index is added: a ledger without it is indexed once when opened. */
const INDEX_VERSION = 1;
const prefixRange = (prefix: string) => ({ start: `${prefix}:`, end: `${prefix};` });

export class LmdbLedgerStore implements LedgerStore {
  private readonly env: RootDatabase;
  private readonly certs: Database<CertificateRecord, string>;
  /** SERIAL:CA -> revocation: what authentication looks up on every client certificate. */
  private readonly revokedDb: Database<RevokedEntry, string>;
  /** OLD:NEW -> CA of NEW: renewal links, written without reading the old record. */
  private readonly links: Database<string, string>;
  private readonly crls: Database<CrlState, string>;
  /** NOTAFTER|CA|SERIAL -> true: what expires when, without reading every record. */
  private readonly expiry: Database<true, string>;
  private readonly meta: Database<number, string>;
  /** lmdb throws from a timer when written to after close: refuse before that. */
  private closed = false;

  /**
   * `fsync`: a record counts once flushed to disk (survives a power cut; every
   * commit waits for the disk, and workers share one write lock). `os`: once
   * committed to the shared memory map (survives any process crash, kill -9
   * included; the kernel writes it back within seconds).
   */
  constructor(
    readonly path: string,
    private readonly sync: 'fsync' | 'os' = 'fsync',
  ) {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    this.env = open({ path, maxDbs: 8, ...(sync === 'os' ? { noSync: true } : {}) });
    // records share one msgpack structure (lmdb keeps it in the database, safe across processes): a write encodes values, not keys
    this.certs = this.env.openDB({ name: 'certs', sharedStructuresKey: Symbol.for('structures') });
    this.revokedDb = this.env.openDB({ name: 'revoked' });
    this.links = this.env.openDB({ name: 'renewals' });
    this.crls = this.env.openDB({ name: 'crls' });
    this.expiry = this.env.openDB({ name: 'expiry' });
    this.meta = this.env.openDB({ name: 'meta' });
    if (this.meta.get('index') !== INDEX_VERSION) this.buildIndexes();
  }

  /** Indexes what a ledger from before the index holds (once; idempotent if workers race). */
  private buildIndexes(): void {
    this.env.transactionSync(() => {
      for (const { value } of this.certs.getRange()) this.expiry.put(expiryKey(value), true);
      this.meta.put('index', INDEX_VERSION);
    });
  }

  async record(r: CertificateRecord): Promise<void> {
    if (this.closed) throw new LedgerError('the ledger is closed');
    const key = certKey(r.serial, r.ca);
    const written = await this.certs.ifNoExists(key, () => {
      this.certs.put(key, r);
      this.expiry.put(expiryKey(r), true);
      if (r.supersedes) this.links.put(`${r.supersedes.serial}:${r.serial}`, r.ca);
    });
    if (!written) throw new LedgerError(`serial ${r.serial} of CA "${r.ca}" is already on record`);
    // committed is visible to every process; flushed survives a power cut too
    if (this.sync === 'fsync') await this.env.flushed;
  }

  get(ca: string, serial: string): CertificateRecord | undefined {
    return norm(this.certs.get(certKey(serial, ca)));
  }

  find(serial: string): CertificateRecord[] {
    return [...this.certs.getRange(prefixRange(serial))].map((e) => norm(e.value)!);
  }

  *list(f: ListFilter = {}): Iterable<CertificateRecord> {
    const now = f.now ?? Date.now();
    const glob = f.subject === undefined ? undefined : new Glob(f.subject);
    for (const value of f.expiringWithinMs === undefined ? this.allRecords() : this.recordsExpiring(now, now + f.expiringWithinMs)) {
      if (f.label !== undefined && value.label !== f.label) continue;
      if (f.ca !== undefined && value.ca !== f.ca) continue;
      if (f.revoked !== undefined && !!value.revoked !== f.revoked) continue;
      if (glob && !glob.test(value.subject, value.subject)) continue;
      if (f.expiringWithinMs !== undefined) {
        const end = Date.parse(value.notAfter);
        if (end <= now || end > now + f.expiringWithinMs) continue;
      }
      yield norm(value)!;
    }
  }

  private *allRecords(): Iterable<CertificateRecord> {
    for (const { value } of this.certs.getRange()) yield value;
  }

  /** Keys of the expiry index after `from`, up to and including `to`, as [ca, serial]. */
  private *expiringKeys(fromMs: number, toMs: number): Iterable<[string, string]> {
    // CA names are [A-Za-z0-9_-], all below '~'
    const range = { start: `${new Date(fromMs).toISOString()}|~`, end: `${new Date(toMs).toISOString()}|~` };
    for (const key of this.expiry.getKeys(range)) {
      const [, ca, serial] = key.split('|') as [string, string, string];
      yield [ca, serial];
    }
  }

  /** `certs list --expiring` reads the window from the index, not every record. */
  private *recordsExpiring(fromMs: number, toMs: number): Iterable<CertificateRecord> {
    for (const [ca, serial] of this.expiringKeys(fromMs, toMs)) {
      const value = this.certs.get(certKey(serial, ca));
      if (value) yield value;
    }
  }

  expiringCounts(fromMs: number, toMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [ca, serial] of this.expiringKeys(fromMs, toMs)) {
      if (this.revokedDb.doesExist(certKey(serial, ca))) continue;
      out.set(ca, (out.get(ca) ?? 0) + 1);
    }
    return out;
  }

  renewalsOf(serial: string): string[] {
    return [...this.links.getKeys(prefixRange(serial))].map((k) => k.slice(serial.length + 1));
  }

  revoke(ca: string, serial: string, r: Revocation, issuerName: string, reissue: CrlReissue): CertificateRecord {
    return this.env.transactionSync(() => {
      const rec = this.certs.get(certKey(serial, ca));
      if (!rec) throw new LedgerError(`no certificate with serial ${serial} from CA "${ca}" on record`);
      if (rec.revoked) throw new LedgerError(`serial ${serial} was already revoked on ${rec.revoked.at} (${rec.revoked.reason})`);
      const updated = { ...rec, revoked: r };
      this.certs.put(certKey(serial, ca), updated);
      this.revokedDb.put(certKey(serial, ca), { ...r, ca, serial, issuerName, notAfter: rec.notAfter });
      this.writeCrl(ca, reissue);
      return norm(updated)!;
    });
  }

  revocationsOf(serial: string): RevokedEntry[] {
    return [...this.revokedDb.getRange(prefixRange(serial))].map((e) => e.value);
  }

  revoked(ca: string): RevokedEntry[] {
    return [...this.revokedDb.getRange()].map((e) => e.value).filter((e) => e.ca === ca);
  }

  revokedCount(ca: string): number {
    return this.revoked(ca).length;
  }

  crl(ca: string): CrlState | undefined {
    const s = this.crls.get(ca);
    return s && { ...s, der: Buffer.from(s.der) };
  }

  updateCrl(ca: string, reissue: CrlReissue): CrlState | undefined {
    return this.env.transactionSync(() => this.writeCrl(ca, reissue));
  }

  /** Inside a write transaction: other processes wait for the write lock, so CRL numbers never repeat. */
  private writeCrl(ca: string, reissue: CrlReissue): CrlState | undefined {
    const previous = this.crls.get(ca);
    const next = reissue(previous, this.revoked(ca));
    if (!next) return previous;
    this.crls.put(ca, next);
    return next;
  }

  /** mdb_env_copy with compaction: a read transaction's snapshot, so writers carry on. */
  async backup(toDir: string): Promise<void> {
    mkdirSync(toDir, { recursive: true, mode: 0o700 });
    if (existsSync(join(toDir, 'data.mdb'))) throw new LedgerError(`${toDir} already holds a ledger`);
    await this.env.backup(toDir, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }
}

/** msgpack hands binary back as a Uint8Array view; callers get a Buffer. */
function norm(r: CertificateRecord | undefined): CertificateRecord | undefined {
  return r && { ...r, der: Buffer.from(r.der.buffer, r.der.byteOffset, r.der.byteLength) };
}
