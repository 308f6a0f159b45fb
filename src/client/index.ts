// The edge client as a library: an EST client, trust bootstrap, crash-safe
// pair storage, and the renewal daemon other Node programs can embed.
export { EstClient, estPath, OPERATIONS } from '../transport/est-client.js';
export type { CsrContext, CsrSource, EnrollResult, EstClientOptions, Exchange, Operation } from '../transport/est-client.js';
export {
  certsFromPkcs7Body, errorFromResponse, parseCacertsResponse, parseCsrAttrsResponse, parseEnrollResponse, parseRetryAfter,
  parseServerKeygenResponse,
} from '../transport/response.js';
export type { EstResponse, ServerKeygenResult } from '../transport/response.js';
export { popChallengePassword, tlsUniqueOf } from '../transport/tls-unique.js';
export { bootstrapTrust, ensureTrust, loadTrustAnchors, parsePin } from './trust.js';
export { buildChain, sha256Hex } from './chain.js';
export { verifyIssued } from './verify-issued.js';
export type { IssuedCheck, VerifiedIssued } from './verify-issued.js';
export { PairStore } from './store.js';
export type { PemPair } from './store.js';
export { formatDuration, parseDurationMs, parseSpan, spanMs } from '../util/durations.js';
export type { Span } from '../util/durations.js';
export { DEFAULT_POLICY, nextAfterSuccess, renewalTime, retryDelay } from './schedule.js';
export type { RenewalPolicy, Validity } from './schedule.js';
export { ClientDaemon, systemClock } from './daemon.js';
export type { AttemptReport, Clock, CommandRunner, DaemonOptions } from './daemon.js';
export { planRungs, renewOnce } from './renew.js';
export type { ClientFactory, EstOps, Rung } from './renew.js';
export type { CertSpec, ClientConfig, CrlConfig, Credentials, PopMode, RenewMethod } from './spec.js';
export { loadClientConfig } from './config.js';
export { loadAziotConfig } from './aziot-config.js';
export { formatStatus, readStatus } from './status.js';
export type { CertStatus, StatusDoc } from './status.js';
export { ClientMetrics } from './metrics.js';
export { CrlRound, checkCertificate, checkChain, describeRevocation } from './revocation.js';
export type { CrlTarget, RevocationReport } from './revocation.js';
export { CLIENT_USAGE, runClientCli } from './cli.js';
