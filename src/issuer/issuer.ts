// One interface for every way a label gets certificates: the layer's own CA
// (local), the parent layer (forward, as an RA), or forward with local fallback.
import type { KeyObject } from 'node:crypto';
import type { Csr } from '../est/csr.js';
import type { Decision, Identity } from '../policy/policy.js';

export type EnrollOperation = 'simpleenroll' | 'simplereenroll' | 'serverkeygen';

export interface EnrollRequest {
  op: EnrollOperation;
  label: string;
  csr: Csr;
  /** What this layer's policy allowed; a local CA issues exactly this. */
  decision: Decision;
  identity: Identity;
  /** The client's current certificate (DER), for simplereenroll. */
  currentCert?: Buffer;
  /** currentCert arrived in a registration authority's Client-Cert header. */
  relayed?: boolean;
}

export interface IssuedResult {
  certDer: Buffer;
  serialHex: string;
  notAfter: Date;
  /** Issued from the local sub-CA because the parent was unreachable. */
  islanded?: boolean;
  /** Issuer name of the CA that signed, for the audit line. */
  issuedBy: string;
}

export interface ServerKeygenResult extends IssuedResult {
  /** PKCS#8 DER of the generated private key. */
  privateKey: Buffer;
}

export interface Issuer {
  readonly mode: 'issue' | 'forward' | 'fallback';
  /** The chain /cacerts serves: issuing CA first, up to and including the root. */
  caCerts(): Promise<Buffer[]>;
  enroll(req: EnrollRequest): Promise<IssuedResult>;
  serverKeygen(req: EnrollRequest): Promise<ServerKeygenResult>;
}

export type { KeyObject };
