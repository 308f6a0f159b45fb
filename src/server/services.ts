// Server-wide collaborators the middleware factories close over.
import type { PasswordVerifier } from '../auth/password.js';
import type { Logger } from '../util/log.js';
import type { Label } from './label.js';

export interface Services {
  labels: Map<string, Label>;
  passwords: PasswordVerifier;
  realm: string;
  bodyLimit: number;
  logger: Logger;
  /** Generic routes passed to the parent layer ([[proxy]]). */
  proxy?: import('./upstream-proxy.js').UpstreamProxy;
  /** Resolves /cacerts for a label (through the CA-chain cache). */
  caChain(label: Label): Promise<Buffer[]>;
  metrics?: import('./metrics.js').GatewayMetrics;
  /** The issuance ledger and revocations, at a layer with local CAs. */
  ledger?: import('../ledger/ledger.js').Ledger;
  /** Is a chain revoked: the ledger for local CAs, the parent's CRLs for the rest. */
  revocation?: import('./revocation.js').RevocationAuthority;
  /** What /crl/ serves: local CRLs and the ones fetched from the parent. */
  crls?: import('./served-crls.js').ServedCrls;
  /** OCSP at /ocsp: local CAs from the ledger, the rest relayed to the parent. */
  ocsp?: import('./ocsp.js').OcspResponder;
  /** Requests held for manual approval, when a label or grant asks for it. */
  approvals?: import('../approval/queue.js').ApprovalQueue;
  /** What /readyz reports. */
  readiness(): Promise<import('./readiness.js').ReadinessReport>;
}
