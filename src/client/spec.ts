// What the daemon keeps fresh: one CertSpec per certificate, produced by
// config.ts (our TOML) or aziot-config.ts (IoT Edge's config.toml).
import type { GeneralName } from '../est/name.js';
import type { KeySpec } from '../pki/keys.js';
import type { RenewalPolicy } from './schedule.js';

export type RenewMethod = 'simplereenroll' | 'simpleenroll';
export type PopMode = 'auto' | 'always' | 'never';

export interface Credentials {
  username?: string;
  password?: string;
  /** `preemptive` (default, as aziot) or `challenge` (only after a 401, as libest). */
  basicAuth?: 'preemptive' | 'challenge';
  /** Long-lived certificate for the first enrollment, and whenever nothing better is valid. */
  bootstrapCert?: string;
  bootstrapKey?: string;
  /** Name of the managed certificate that is this client's EST identity (presented in TLS for the others). */
  identity?: string;
}

export interface CertSpec {
  /** Unique; names the certificate in logs, status and metrics. */
  name: string;
  url: string;
  label?: string;
  /**
   * PEM files of trust anchors for the EST server and for the certificates it
   * issues. Empty: the system's roots verify the server, and the roots its
   * /cacerts returns over that verified connection verify what it issues.
   */
  trustFiles: string[];
  /** Bootstraps the (single) trust file when it is missing (RFC 7030 §4.1.1). */
  pin?: string;
  /** Encoded order, as buildName takes it. */
  subject: Array<[string, string]>;
  subjectAltNames: GeneralName[];
  /** Request a CA certificate (IoT Edge CA): basicConstraints CA:TRUE pathLen 0, keyUsage keyCertSign. */
  ca: boolean;
  keyType: KeySpec;
  certFile: string;
  keyFile: string;
  policy: RenewalPolicy;
  method: RenewMethod;
  auth: Credentials;
  pop: PopMode;
  /** Shell command run after each renewal. */
  postRenew?: string;
  /** A revoked certificate is replaced through the bootstrap credential (new key) instead of renewal stopping. */
  reenrollRevoked?: boolean;
  timeoutMs: number;
}

export interface ClientConfig {
  certs: CertSpec[];
  statusFile: string;
  logLevel: string;
  /** HOST:PORT for the Prometheus endpoint. */
  metricsListen?: string;
  /** Revocation checks against the gateway's CRLs; absent: none. */
  crl?: CrlConfig;
}

export interface CrlConfig {
  /** Fetch the CRLs again at least this often. */
  refreshMs: number;
  /** PEM file of every CRL of the certificates' chains, for local relying parties. */
  out?: string;
}
