// The approval queue's one storage interface: requests held for an operator
// (issue 12). redis-store.ts shares it between the replicas of a layer,
// lmdb-store.ts keeps it in the data directory of an embedded gateway.

/**
 * pending: waiting for an operator; approved: the next poll issues; issuing:
 * one poll claimed it and is issuing; issued: consumed (a further request is a
 * new one); rejected / expired: kept until `removeAt` so the next poll learns it.
 */
export type ApprovalState = 'pending' | 'approved' | 'issuing' | 'issued' | 'rejected' | 'expired';
export const APPROVAL_STATES: readonly ApprovalState[] = ['pending', 'approved', 'issuing', 'issued', 'rejected', 'expired'];

export interface HeldRequest {
  /** Random, unguessable (128 bits, hex): what operators name. */
  id: string;
  /** requestKey(): what the client's repeated request finds the entry by. */
  key: string;
  label: string;
  op: string;
  state: ApprovalState;
  /** The CSR as first received, base64 DER. */
  csr: string;
  csrSha256: string;
  /** RFC 4514 subject and subjectAltNames as TYPE:VALUE, as the CSR asked. */
  subject: string;
  sans: string[];
  keyType: string;
  /** SHA-256 of the SubjectPublicKeyInfo (hex). */
  keySha256: string;
  /** As grants name it: user:NAME, cert:device/CN, cert:ra/CN. */
  identity: string;
  /** When a registration authority relayed it: the RA certificate's subject, then its issuer. */
  ra?: string[];
  /** Client address (an RA's, when one relayed it). */
  source: string;
  /** Epoch milliseconds. */
  firstSeen: number;
  lastSeen: number;
  polls: number;
  /** A pending request expires then. */
  expiresAt: number;
  /** The entry is deleted then. */
  removeAt: number;
  decidedBy?: string;
  decidedAt?: number;
  reason?: string;
  /** Validity the operator chose at approval (never beyond the label's). */
  certDays?: number;
  /** When a poll claimed the approved request for issuing (state issuing). */
  claimedAt?: number;
}

/** Fields a state change may set. */
export type Transition = Pick<HeldRequest, 'state' | 'removeAt'> & Partial<Pick<HeldRequest, 'decidedBy' | 'decidedAt' | 'reason' | 'certDays' | 'claimedAt'>>;

export class ApprovalStoreError extends Error {}

export interface ApprovalStore {
  readonly kind: 'redis' | 'lmdb';
  get(id: string): Promise<HeldRequest | undefined>;
  /** The entry the request key points at. */
  byKey(key: string): Promise<HeldRequest | undefined>;
  /**
   * Adds `r` unless its key already points at an entry other than `replacing`:
   * then that entry is returned unchanged (two replicas queueing the same
   * request at once make one entry).
   */
  add(r: HeldRequest, replacing?: string): Promise<HeldRequest>;
  /** Counts one more poll. */
  poll(id: string, at: number): Promise<void>;
  /**
   * Atomically, across processes: the entry is in one of `from`, and moves to
   * `to`. Returns the entry after the change, or undefined when it was in
   * another state or is gone (someone else changed it first).
   */
  transition(id: string, from: readonly ApprovalState[], to: Transition): Promise<HeldRequest | undefined>;
  list(): Promise<HeldRequest[]>;
  /** Deletes entries whose removeAt has passed (Redis expires them itself). */
  purge(now: number): Promise<void>;
  close(): Promise<void>;
}
