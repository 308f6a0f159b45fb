// What the middleware of one EST request hand to each other (ctx.state).
import type { TLSSocket } from 'node:tls';
import type { EstError } from '../errors.js';
import type { Csr } from '../est/csr.js';
import type { IssuedResult } from '../issuer/issuer.js';
import type { Decision, Identity } from '../policy/policy.js';
import type { Label } from './label.js';

export type Operation = 'cacerts' | 'simpleenroll' | 'simplereenroll' | 'csrattrs' | 'serverkeygen' | 'fullcmc';

export interface PeerCertificate {
  der: Buffer;
  x509: import('node:crypto').X509Certificate;
  /** DER of every certificate OpenSSL verified in the client's chain, leaf first. */
  chain: Buffer[];
  /** OpenSSL verified the chain against the union of all client trust anchors. */
  verified: boolean;
  verifyError?: string;
  isRa: boolean;
  subject: string;
  /** RFC 4514 subject of its issuer. */
  issuer: string;
  cn: string;
  /** chainsTo results for this connection, by anchor set. */
  trust: Map<string, boolean>;
}

export interface EstState {
  op?: Operation;
  label?: Label;
  socket?: TLSSocket;
  body?: Buffer;
  identity?: Identity;
  peer?: PeerCertificate;
  csr?: Csr;
  decision?: Decision;
  issued?: IssuedResult;
  /** simplereenroll: the certificate being renewed (TLS client certificate, or relayed by an RA). */
  currentCert?: Buffer;
  /** currentCert as checkReenrollIdentity parsed it, for the revocation check to reuse. */
  currentFields?: import('../est/certificate.js').CertFields;
  /** Renewal with the same key (renew), a new one (rekey), or an RA's renewal for its client without Client-Cert (vouched), for the audit line. */
  reenrollKind?: 'renew' | 'rekey' | 'vouched';
  error?: EstError;
  internalError?: unknown;
}
