// The issuance ledger's one storage interface (boulder's single authority for
// issuance and revocation): a record per certificate, revocations, and the
// CRL state of each local CA. lmdb-store.ts is its implementation.
import type { RevocationReason } from '../pki/crl.js';

export interface Revocation {
  reason: RevocationReason;
  /** ISO time of the revocation. */
  at: string;
  /** Who revoked: the OS user of `estgw certs revoke`, or --by. */
  by: string;
}

export interface CertificateRecord {
  /** Hex of the serial as X.509 tools print it (lower case, no leading zero bytes). */
  serial: string;
  /** Local CA name ([cas.NAME]) that signed. */
  ca: string;
  /** Subject of that CA (RFC 4514) and its key identifier (hex): a renewed sub-CA keeps its name, not its key. */
  issuer: string;
  issuerKeyId: string;
  subject: string;
  /** subjectAltNames as TYPE:VALUE (dns:plc-7, ip:10.0.0.7). */
  sans: string[];
  keyType: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  label: string;
  op: string;
  /** The authenticated identity, as grants name it (cert:device/CN, cert:ra/CN, user:NAME). */
  identity: string;
  /** The registration authority it came through, when the identity is one. */
  ra?: string;
  /** Subject of the certificate an RA relayed in Client-Cert for a renewal. */
  relayedFor?: string;
  islanded: boolean;
  /** A CA certificate (a lower layer's sub-CA). */
  caCert: boolean;
  /** The certificate this one renews (simplereenroll); the old one stays valid. */
  supersedes?: { serial: string; issuer: string };
  revoked?: Revocation;
  der: Buffer;
}

/** What a CRL needs of a revocation, and what authentication checks against. */
export interface RevokedEntry extends Revocation {
  ca: string;
  serial: string;
  /** Hex DER of the issuer Name, so a serial of another CA never matches. */
  issuerName: string;
  notAfter: string;
}

export interface CrlState {
  number: number;
  thisUpdate: string;
  nextUpdate: string;
  /** Key identifier of the CA key that signed it. */
  keyId: string;
  der: Buffer;
}

export interface ListFilter {
  label?: string;
  ca?: string;
  /** Glob on the subject (RFC 4514 string) with `*`. */
  subject?: string;
  /** notAfter within this many ms from now, not yet expired. */
  expiringWithinMs?: number;
  revoked?: boolean;
  now?: number;
}

export class LedgerError extends Error {}

export interface LedgerStore {
  /** Resolves once the record is committed and flushed to disk; rejects if it could not be. */
  record(r: CertificateRecord): Promise<void>;
  get(ca: string, serial: string): CertificateRecord | undefined;
  /** Every record with this serial (one, unless two local CAs drew the same 128 random bits). */
  find(serial: string): CertificateRecord[];
  list(filter?: ListFilter): Iterable<CertificateRecord>;
  /**
   * Per CA, certificates not revoked whose notAfter is after `fromMs` and not
   * after `toMs`; reads an index by notAfter, so its cost follows the window,
   * not the size of the ledger.
   */
  expiringCounts(fromMs: number, toMs: number): Map<string, number>;
  /** Renewals of a certificate, by serial. */
  renewalsOf(serial: string): string[];
  /**
   * Marks one certificate revoked and, in the same transaction, lets `reissue`
   * produce the CA's next CRL from every revocation of that CA.
   */
  revoke(ca: string, serial: string, r: Revocation, issuerName: string, reissue: CrlReissue): CertificateRecord;
  revocationsOf(serial: string): RevokedEntry[];
  revoked(ca: string): RevokedEntry[];
  revokedCount(ca: string): number;
  crl(ca: string): CrlState | undefined;
  /** Atomically (across processes) reads the CA's CRL state and stores what `reissue` returns, if anything. */
  updateCrl(ca: string, reissue: CrlReissue): CrlState | undefined;
  /** A consistent copy, taken while others write, that opens as a ledger of its own. */
  backup(toDir: string): Promise<void>;
  close(): Promise<void>;
}

/** Given the stored CRL and the CA's revocations, the next CRL, or undefined to keep the stored one. */
export type CrlReissue = (previous: CrlState | undefined, revoked: RevokedEntry[]) => CrlState | undefined;
