// The gateway's configuration: one schema, every key documented where its
// default is set. `estgw check-config` and `estgw serve` validate with it; the
// configuration reference in docs/ is generated from these descriptions.
import { z } from 'zod';
import { KEY_SPECS } from '../pki/keys.js';
import { parseDurationMs } from '../util/durations.js';

const OPERATIONS = ['cacerts', 'simpleenroll', 'simplereenroll', 'csrattrs', 'serverkeygen', 'fullcmc'] as const;
export { OPERATIONS };

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/, 'must be HOST:PORT (IPv6 in brackets)')
  .describe('Address to listen on, HOST:PORT.');

const keySpec = z.enum(KEY_SPECS as [string, ...string[]]);
const ekuName = z.enum(['clientAuth', 'serverAuth', 'cmcRA']);
const pattern = z.string().min(1);
const identityPattern = z.string().regex(/^(\*|user:.+|cert:.+)$/, 'must be *, user:NAME, cert:ra/NAME, cert:device/NAME or cert:NAME');
/** A pattern that names a role or a user: what RA and CA grants require. */
const explicitIdentity = (p: string) => (p.startsWith('user:') && !p.includes('*')) || /^cert:(ra|device)\//.test(p);
const MIN_CERT_LIFETIME_MS = 60_000;
const durationAtLeast = (what: string, minMs: number, minText: string) =>
  z.string().superRefine((v, ctx) => {
    try {
      if (parseDurationMs(v, what) < minMs) ctx.addIssue({ code: 'custom', message: `must be at least ${minText}` });
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });
const duration = durationAtLeast('cert_lifetime', MIN_CERT_LIFETIME_MS, '60s');
const approvalMode = z.enum(['auto', 'manual']);

export const grantSchema = z
  .object({
    identity: z
      .union([identityPattern, z.array(identityPattern).min(1)])
      .default('*')
      .describe(
        'Who this grant is for: `user:NAME` (HTTP Basic), `cert:ra/CN` (a client certificate with EKU id-kp-cmcRA from this layer\'s own PKI: a registration authority), `cert:device/CN` (any other client certificate), `cert:CN` (either), globs with `*`; `*` is every authenticated client. A grant for CA certificates, or on a label that issues id-kp-cmcRA, must name its identities with a role or a user: `*` and `cert:CN` never meet it.',
      ),
    common_names: z.array(pattern).default(['*']).describe('Subject CNs the identity may request (globs; `{identity}` stands for its own user name or certificate CN). [] forbids any CN.'),
    dns_names: z.array(pattern).default([]).describe('subjectAltName dNSName values it may request (globs).'),
    ip_addresses: z.array(pattern).default([]).describe('subjectAltName iPAddress values it may request (globs).'),
    emails: z.array(pattern).default([]).describe('subjectAltName rfc822Name values it may request (globs).'),
    uris: z.array(pattern).default([]).describe('subjectAltName URI values it may request (globs).'),
    subject_attributes: z
      .array(pattern)
      .default([])
      .describe('Subject attributes besides CN the identity may put in its subject: `O`, `OU`, `C`, ... (any value), `O=Plant *` (a glob on the value), or `*` (anything). emailAddress is governed by `emails`. Default: none.'),
    allow_wildcard: z.boolean().default(false).describe('May request wildcard dNSNames (`*.plant.local`, the whole left-most label only, RFC 6125 §6.4.3) where dns_names matches them.'),
    allow_ca: z.boolean().default(false).describe('May request CA certificates (basicConstraints CA:TRUE), for example a sub-CA of a lower layer or an IoT Edge CA.'),
    max_path_len: z.number().int().min(0).max(16).default(0).describe('Largest pathLen a CA request may carry when allow_ca is true.'),
    approval: approvalMode.optional().describe('`manual` holds what this grant allows for an operator (`estgw requests approve`), `auto` issues at once; unset: the label\'s `approval`.'),
  })
  .strict();

export const upstreamSchema = z
  .object({
    url: z.string().regex(/^https:\/\//, 'must be an https:// URL').describe('EST base URL of the parent layer, e.g. https://ops-gw:8085/.well-known/est.'),
    label: z.string().regex(/^[A-Za-z0-9._~-]+$/).optional().describe('CA label at the parent; absent: the parent\'s unlabelled path.'),
    trust: z.string().describe('PEM file with the trust anchor(s) of the parent\'s TLS certificate (normally the hierarchy\'s root).'),
    cert: z.string().optional().describe('PEM file with this layer\'s RA certificate (EKU id-kp-cmcRA) and its chain, presented upstream.'),
    key: z.string().optional().describe('PEM file with the RA certificate\'s private key.'),
    username: z.string().optional().describe('HTTP Basic user at the parent (this layer\'s own credentials, never the client\'s).'),
    password_file: z.string().optional().describe('File holding the upstream Basic password.'),
    basic_auth: z.enum(['challenge', 'preemptive']).default('challenge').describe('Send Basic only after a 401 challenge (what libest expects) or with every request.'),
    timeout: z.number().min(0.1).default(30).describe('Seconds to wait for the parent\'s answer; then 504, or local issuance with fallback.'),
    connect_timeout: z.number().min(0.1).default(5).describe('Seconds to wait for the TCP+TLS connection to the parent; then 503 (504 when the parent accepted TCP but never completed TLS), or local issuance with fallback.'),
    reenroll: z
      .enum(['client-cert', 'auto', 'simpleenroll'])
      .default('client-cert')
      .describe('How a renewal this RA relays reaches the parent: `client-cert` as simplereenroll with the client\'s certificate in an RFC 9440 Client-Cert header (est-gateway parents); `simpleenroll` as an enrollment this RA vouches for (parents that do not take Client-Cert, such as libest\'s estserver: they compare the CSR with the RA\'s own certificate); `auto` tries Client-Cert and, when the parent refuses it (400/403), vouches with simpleenroll, logging a warning.'),
    cacerts_refresh: z.number().min(1).default(300).describe('Seconds after which the cached /cacerts chain is refreshed in the background.'),
    cacerts_max_stale: z.number().min(1).default(7 * 86400).describe('Seconds a cached chain is still served while the parent is unreachable.'),
    crl_refresh: z
      .number()
      .min(1)
      .default(300)
      .describe('Seconds between fetches of the parent\'s CRLs (GET /crl/ and each CRL it lists, through this connection), which this layer checks client and RA certificates against and serves at its own /crl/. A revocation at the parent reaches this layer within about this long (one replica fetches, the others read Redis). Labels sharing a parent use the smallest value; a CRL within this of its nextUpdate is asked for at once, so it is replaced before it goes stale. Kept while the parent is down, up to cacerts_max_stale.'),
    crl_origin: z
      .string()
      .regex(/^https:\/\/[^/?#@\s]+\/?$/, 'must be an https:// origin: scheme, host and port, no path')
      .optional()
      .describe('Where this layer fetches the CRLs it would otherwise fetch from `url`\'s origin (GET /crl/ there), e.g. "https://top-gw:8085": for a parent that does not pass /crl/ through, such as libest\'s estproxy in front of an est-gateway. Same trust, cert, key and timeouts as `url`; the CRLs are still verified against the CAs this layer knows. Unset: `url`\'s origin.'),
  })
  .strict();

export const caSchema = z
  .object({
    create: z
      .enum(['root', 'subordinate', 'request', 'none'])
      .default('root')
      .describe('On first start, create a self-signed `root`, a `subordinate` of another local CA (`parent`), `request` it from the parent layer over EST (see `request`; also `estgw ca request-subca`), or `none`: the files must exist.'),
    renew_at: z
      .number()
      .min(0.1)
      .max(0.95)
      .default(0.66)
      .describe('For create = "request": the share of the sub-CA\'s lifetime after which the gateway obtains a new one (new key) from the parent; the old one keeps validating what it issued until it expires.'),
    request: upstreamSchema.optional().describe('For create = "request": the parent layer that issues this sub-CA (a label whose grant allows CA certificates to this layer\'s identity).'),
    parent: z.string().optional().describe('For create = "subordinate": the local CA that signs this one.'),
    dir: z.string().optional().describe('Where ca.cert.pem, ca.key.pem (mode 0600) and chain.pem live. Default: DATA_DIR/ca/NAME.'),
    subject: z.string().default('/CN=est-gateway CA').describe('Subject for a created CA, as /O=Plant/CN=Name.'),
    key: keySpec.default('p256').describe('Key type for a created CA.'),
    days: z.number().int().min(1).default(7300).describe('Validity of a created CA in days.'),
    path_len: z.number().int().min(0).optional().describe('basicConstraints pathLen of a created CA (absent: unlimited for a root).'),
    crl_validity: durationAtLeast('crl_validity', 60_000, '60s')
      .default('7d')
      .describe('nextUpdate of this CA\'s CRL, after thisUpdate ("7d", "12h"). The CRL is signed again on every revocation and once half of this has passed.'),
    crl_url: z
      .string()
      .regex(/^https?:\/\/[\x21-\x7e]+$/, 'must be an http:// or https:// URL in plain ASCII')
      .optional()
      .describe('URL written as the CRL distribution point into every certificate this CA signs, e.g. "http://est-gw.level2.plant/crl/NAME.crl" (a per-layer DNS name pointing at this gateway\'s crl_listen). Unset: certificates carry no CRL distribution point.'),
    ocsp_url: z
      .string()
      .regex(/^https?:\/\/[\x21-\x7e]+$/, 'must be an http:// or https:// URL in plain ASCII')
      .optional()
      .describe('URL written as the OCSP responder (authorityInfoAccess id-ad-ocsp) into every certificate this CA signs, e.g. "http://est-gw.level2.plant/ocsp" (a per-layer DNS name pointing at a gateway\'s crl_listen; every layer answers OCSP for the CAs of its chain at /ocsp). Unset: certificates name no OCSP responder.'),
    ocsp_validity: durationAtLeast('ocsp_validity', 60_000, '60s')
      .default('1h')
      .describe('nextUpdate of this CA\'s OCSP answers, after thisUpdate: how long a relying party may reuse one. A layer below reuses a relayed answer for at most 60 s, whatever this says.'),
  })
  .strict();

export const labelSchema = z
  .object({
    mode: z.enum(['issue', 'forward']).default('issue').describe('`issue`: this layer\'s CA signs; `forward`: the request goes to the parent layer ([labels.NAME.upstream]) as a Registration Authority.'),
    fallback: z.enum(['none', 'issue']).default('none').describe('With mode = "forward": `issue` signs locally from `ca` when the parent is unreachable or times out (islanded operation), marking the certificate and the audit line.'),
    upstream: upstreamSchema.optional().describe('The parent layer, for mode = "forward".'),
    ca: z.string().min(1).default('root').describe('Name of the CA (a [cas.NAME] table) that issues for this label (mode = "issue", or the fallback).'),
    cert_days: z.number().int().min(1).max(36500).default(30).describe('Validity of issued certificates in days; never beyond the CA\'s own notAfter.'),
    cert_lifetime: duration
      .optional()
      .describe('Validity as a duration ("90s", "15m", "12h", "30d"), instead of cert_days: for short-lived certificates and demonstrations. At least 60 s.'),
    auth: z
      .array(z.enum(['basic', 'cert']))
      .min(1)
      .default(['basic', 'cert'])
      .describe('Accepted ways to authenticate enrollment: `basic` (HTTP Basic against [users]) and/or `cert` (TLS client certificate chaining to client_trust or to this label\'s CA).'),
    require_both: z.boolean().default(false).describe('Require a trusted client certificate and Basic credentials together.'),
    client_trust: z.array(z.string()).default([]).describe('PEM files of extra trust anchors for client certificates on this label (manufacturer or bootstrap CAs). The label\'s own CA chain is always trusted.'),
    require_pop: z.boolean().default(false).describe('Require RFC 7030 §3.5 proof-of-possession linking: the CSR must carry base64(tls-unique) in challengePassword; needs TLS 1.2. csrattrs then lists the challengePassword OID.'),
    key_types: z.array(z.enum(['rsa', 'p256', 'p384', 'p521', 'ed25519'])).min(1).default(['rsa', 'p256', 'p384']).describe('Public key types a CSR may carry.'),
    rsa_min_bits: z.number().int().min(2048).default(2048).describe('Smallest RSA modulus accepted.'),
    ext_key_usage: z.array(ekuName).default(['clientAuth']).describe('Extended key usages put in end-entity certificates; a CSR may request only these.'),
    serverkeygen_key: keySpec.default('rsa2048').describe('Key type generated by serverkeygen (libest\'s client accepts only RSA).'),
    csr_attributes: z.array(z.string().regex(/^\d+(\.\d+)+$/, 'must be a dotted OID')).default([]).describe('Extra OIDs listed by csrattrs, after those the policy implies.'),
    registration_authorities: z
      .array(z.string().regex(/^(user|cert):[^*]+$/, 'must be cert:NAME or user:NAME, without *'))
      .default([])
      .describe('Identities that are registration authorities on this label besides certificates with EKU id-kp-cmcRA: `cert:NAME` (a client certificate with that CN from this layer\'s own PKI, e.g. an RA certificate from a foreign CA without EKU, such as libest\'s example CA issues) or `user:NAME`. They then meet `cert:ra/NAME` grants, may send Client-Cert, skip PoP linking, and renewals they send without Client-Cert are enrollments they vouch for (RFC 7030 §3.7). Device labels of the layer reserve these names.'),
    reserved_names: z
      .array(pattern)
      .default([])
      .describe('CNs and dNSNames (globs) this label never issues, whoever asks, e.g. ["*-ra", "* CA"] on a device label. Labels that issue neither RA nor CA certificates also refuse every literal CN that an RA or CA grant of this layer names.'),
    profile_oid: z
      .string()
      .regex(/^[0-2](\.(0|[1-9]\d{0,14}))+$/, 'must be a dotted OID with arcs below 2^53')
      .optional()
      .describe('certificatePolicies OID (under your organisation\'s arc) written into every certificate this label signs: such a certificate renews only on this label. Without one, a certificate renews only on a label of the same profile: the same CA, RA role, CA flag and extended key usages, and never for longer than it had.'),
    forward_serverkeygen: z
      .boolean()
      .default(false)
      .describe('With mode = "forward": offer serverkeygen, whose generated private key then passes unencrypted through this layer (and every layer between it and the issuing one). Off: serverkeygen is 501 on this label. Labels that issue locally always offer it.'),
    max_name_length: z
      .number()
      .int()
      .min(1)
      .max(32768)
      .default(64)
      .describe('Longest CN a CSR may carry, in characters (RFC 5280 ub-common-name: 64), and the bound of subject attributes RFC 5280 Appendix A bounds nowhere; attributes with a bound of their own keep it (O and OU 64, L and ST 128, serialNumber 64, emailAddress 255). Longer is 400.'),
    rsa_max_bits: z.number().int().min(2048).max(16384).default(8192).describe('Largest RSA modulus accepted, checked before the signature is verified (a huge modulus costs verification time). Keep it at or above rsa_min_bits.'),
    rsa_max_exponent: z
      .number()
      .int()
      .min(3)
      .max(4294967297)
      .default(65537)
      .describe('Largest RSA public exponent accepted (odd, at least 3), checked before the signature is verified: a huge exponent makes verification many times slower. At most 2^32+1.'),
    csrattrs: z
      .enum(['policy', 'none'])
      .default('policy')
      .describe(
        '`policy`: /csrattrs lists what this label accepts (RFC 7030 §4.5.2 as clarified by RFC 9908): challengePassword when require_pop, each key type (rsaEncryption with rsa_min_bits, id-ecPublicKey with its curves, Ed25519), the signature algorithm for each, and csr_attributes. `none`: /csrattrs answers 204 No Content, which libest\'s estclient reports as a failure.',
      ),
    approval: approvalMode
      .default('auto')
      .describe('`manual`: an enrollment that passed authentication, proof-of-possession and policy is held (202 + Retry-After) until an operator approves it with `estgw requests approve`; the client\'s repeated request then gets the certificate. `auto`: issued at once. A grant\'s own `approval` overrides this.'),
    approval_exempt_renewals: z.boolean().default(true).describe('With manual approval: renewals (simplereenroll) of a valid certificate this label issued are not held. Renewals an RA vouches for without Client-Cert are enrollments and are held.'),
    approval_exempt_ras: z.boolean().default(false).describe('With manual approval: requests from a registration authority (a lower layer, which may hold them itself) are not held.'),
    approval_exempt_identities: z.array(identityPattern).default([]).describe('With manual approval: identities (patterns as in grants) whose requests are not held, e.g. ["cert:device/line-*"].'),
    grants: z.array(grantSchema).default([{ identity: '*', common_names: ['*'], dns_names: ['*'], ip_addresses: ['*'], emails: ['*'], uris: ['*'], subject_attributes: ['*'], allow_wildcard: false, allow_ca: false, max_path_len: 0 }]).describe('Which names each identity may request. No matching grant: 403. Without any [[grants]] table: one grant letting every authenticated client request any subject and subjectAltName, but no CA certificate (what the libest test server does).'),
  })
  .strict();

export const proxyRouteSchema = z
  .object({
    prefix: z
      .string()
      .regex(/^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+\/$/, 'must start and end with /, e.g. /v2/, in plain path characters (no %, no //)')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'prefix must not contain . or .. segments')
      .describe('Path prefix served by this route, e.g. /v2/ for a container registry. The path is decoded once, must stay under the prefix (no `.`/`..` segments, no encoded `/` or `\\`, no NUL: else 400) and goes upstream in its normalised form.'),
    target: z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be scheme://host:port with no path').describe('The parent layer that serves this prefix.'),
    trust: z.string().optional().describe('PEM trust anchors for an https target; absent: the system roots.'),
    cert: z.string().optional().describe('Client certificate (PEM) to present to the target, only on behalf of callers this route admits.'),
    key: z.string().optional().describe('Its private key.'),
    timeout: z.number().min(0.1).default(60).describe('Seconds to wait for the target\'s answer; then 504.'),
    identities: z
      .array(identityPattern)
      .default([])
      .describe('Who may use this route: `cert:device/CN` (TLS client certificate chaining to client_trust), `cert:ra/CN` (the same with EKU id-kp-cmcRA), `user:NAME` (HTTP Basic against [users]), globs with `*`. Default: nobody (403 for every caller).'),
    client_trust: z.array(z.string()).default([]).describe('PEM files of the trust anchors for client certificates on this route. Without any, no certificate authenticates here.'),
    pass_authorization: z
      .boolean()
      .default(false)
      .describe('Pass the caller\'s Authorization header to the target (a registry\'s own tokens); callers then authenticate here by certificate only. Off: the header is removed. Client-certificate and identity headers (Client-Cert, X-Forwarded-Client-Cert, X-SSL-Client-*, X-Forwarded-User, ...), Proxy-Authorization and X-Forwarded-* from the caller are always removed.'),
  })
  .strict();

export const userSchema = z
  .object({
    password_hash: z
      .string()
      .regex(/^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/, 'must be a hash printed by `estgw passwd`')
      .describe('scrypt hash of the password, as printed by `estgw passwd`. Plain passwords are never stored.'),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        listen: hostPort.default('127.0.0.1:8085'),
        data_dir: z.string().default('./data').describe('State directory: CA keys and certificates, the TLS certificate.'),
        workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default(1).describe('Worker processes serving requests; `auto` uses one per CPU.'),
        realm: z.string().default('estrealm').describe('HTTP Basic realm in the 401 challenge.'),
        body_limit: z.number().int().min(1024).max(16 * 1024 * 1024).default(65536).describe('Largest request body in bytes; larger gets 413.'),
        request_timeout: z.number().min(1).default(30).describe('Seconds a client may take to send a whole request; slower gets 408.'),
        headers_timeout: z.number().min(1).default(10).describe('Seconds a client may take to send the request headers.'),
        keep_alive_timeout: z.number().min(0).default(5).describe('Seconds an idle keep-alive connection stays open.'),
        handshake_timeout: z
          .number()
          .min(1)
          .default(10)
          .describe('Seconds a client may take to complete the TLS handshake; then the connection is destroyed (it holds a max_handshakes slot until then).'),
        max_connections_per_address: z
          .number()
          .int()
          .min(1)
          .default(256)
          .describe('Open connections one client address may hold, per worker process; more are reset at once. A lower layer\'s gateway forwards over up to 64 connections per worker, and devices behind a NAT share one address: keep it well above both.'),
        max_handshakes: z
          .number()
          .int()
          .min(1)
          .default(1024)
          .describe('TLS handshakes in progress at once, per worker process; connections beyond are reset at once. An unfinished handshake ends after handshake_timeout. Keep it above max_connections_per_address, so that one address cannot take them all.'),
        shutdown_delay: z
          .number()
          .min(0)
          .max(300)
          .default(1)
          .describe('Seconds between SIGTERM and closing the listener: /readyz answers 503 and new connections are still served, so that load balancers (a Kubernetes Service) stop sending before the port closes.'),
        shutdown_grace: z
          .number()
          .min(0)
          .max(300)
          .default(10)
          .describe('Seconds requests in flight may take to finish once the listener is closed; connections still open then are closed. shutdown_delay plus shutdown_grace should stay below the orchestrator\'s kill timeout (Kubernetes: terminationGracePeriodSeconds, 30 by default).'),
        tls_issuer: z.string().default('root').describe('Local CA that issues the gateway\'s TLS server certificate when tls_cert is not set.'),
        tls_names: z.array(z.string()).optional().describe('DNS names and IP addresses for the generated TLS certificate. Default: localhost, 127.0.0.1, ::1 and the host name.'),
        tls_cert: z.string().optional().describe('PEM file with the TLS server certificate and its chain (instead of a generated one).'),
        tls_key: z.string().optional().describe('PEM file with the TLS server key.'),
        metrics_listen: hostPort
          .optional()
          .describe('Serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP, its own port, off the EST port), e.g. "127.0.0.1:9464". Unset: no metrics endpoint.'),
        crl_listen: hostPort
          .optional()
          .describe('Also serve each local CA\'s CRL at http://HOST:PORT/crl/NAME.crl (plain HTTP, its own port: relying parties fetch CRLs without TLS). The HTTPS listener serves the same paths. Unset: HTTPS only.'),
        ocsp_rate: z.number().int().min(1).default(200).describe('OCSP answers this process signs per second at most (with a burst of as many): each is a CA signature, and anyone who can reach /ocsp can ask with a fresh nonce every time. Past it the answer is tryLater; enrollment is never slowed by OCSP. Per process: multiply by the workers.'),
        crl_stale: z
          .enum(['open', 'closed'])
          .default('open')
          .describe('When the CRL that covers a certificate of a client\'s chain is past its nextUpdate (the parent has been unreachable longer than the CRL\'s validity): `open` checks against it anyway and logs a warning once per CRL (metric estgw_crl_stale_accepted_total), `closed` refuses with 503 and Retry-After until a fresh CRL arrives. A chain for which no CRL is known at all (a parent that serves none) is not checked either way. /readyz reports stale CRLs in both cases.'),
        ledger_sync: z
          .enum(['fsync', 'os'])
          .default('os')
          .describe('When an issued certificate counts as recorded in the ledger (DATA_DIR/ledger) before it is returned: `os` once committed to the memory map every process shares (survives any process crash, kill -9 included; the kernel writes it to disk within seconds), `fsync` once flushed to disk (survives a power cut too, at about half the issuance throughput on one disk: every commit waits for the disk and workers take turns).'),
        tls_min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest TLS version offered. libest\'s client needs TLSv1.2; tls-unique PoP exists only in TLS 1.2.'),
      })
      .strict()
      .prefault({})
      .describe('The HTTPS listener, its TLS certificate, limits and worker processes.'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level; audit lines are at info.'),
      })
      .strict()
      .prefault({})
      .describe('Structured JSON log lines on stdout, one audit line per EST request.'),
    redis: z
      .object({
        url: z.string().optional().describe('Redis URL for the shared CA-chain cache (env REDIS_URL overrides). Unset: in-process cache.'),
        key_prefix: z.string().default('estgw:').describe('Prefix of every Redis key this gateway writes.'),
      })
      .strict()
      .prefault({})
      .describe('The CA-chain cache shared by the replicas of a layer.'),
    approval: z
      .object({
        expiry: durationAtLeast('approval.expiry', 1000, '1s').default('7d').describe('How long a held request waits for a decision; then it expires (audit line "approval request expired") and the client\'s next request is queued anew.'),
        keep_decided: durationAtLeast('approval.keep_decided', 1000, '1s').default('1d').describe('How long a rejected or expired request is kept after the decision, so that the client\'s next poll sees the 403 with the reason (and `estgw requests list` shows it).'),
        retry_after: z.number().int().min(1).max(86400).default(60).describe('Seconds in the Retry-After of a 202 for a held request.'),
        max_pending_per_source: z.number().int().min(1).default(10).describe('Held requests one client address may have waiting; more get 503 with a reason. Not applied to registration authorities (their whole subtree shares their address).'),
        max_pending_per_identity: z.number().int().min(1).default(100).describe('Held requests one authenticated identity may have waiting (a shared bootstrap user counts once); more get 503, except that an address with nothing waiting may always queue one (within max_pending_per_label), so a few addresses cannot lock every device out. Not applied to registration authorities.'),
        max_pending_per_label: z.number().int().min(1).default(1000).describe('Held requests one label may have waiting, whoever asks; more get 503.'),
        hook: z.array(z.string().min(1)).min(1).optional().describe('Command run (argv, no shell) when a request is queued, e.g. ["/usr/local/bin/notify-operator"]; it gets ESTGW_REQUEST_ID, ESTGW_REQUEST_LABEL, ESTGW_REQUEST_SUBJECT, ESTGW_REQUEST_NAMES, ESTGW_REQUEST_IDENTITY and ESTGW_REQUEST_SOURCE in its environment. Failures are logged; the client\'s answer never waits for it.'),
        hook_timeout: z.number().min(1).max(300).default(10).describe('Seconds the hook may run before it is killed.'),
      })
      .strict()
      .prefault({})
      .describe('The queue of requests held for manual approval (labels with approval = "manual"): in Redis under key_prefix when redis.url is set (shared by every replica), else in DATA_DIR/approvals.'),
    cas: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'CA names use letters, digits, - and _'), caSchema).prefault({ root: {} }).describe('Local CAs by name.'),
    users: z.record(z.string().min(1), userSchema).default({}).describe('HTTP Basic users by name.'),
    proxy: z
      .array(proxyRouteSchema)
      .default([])
      .describe('Generic routes ([[proxy]]) passed to the parent layer with http-proxy, bodies and answers byte for byte, for the identities each route names, so one gateway per layer can replace the IoT Edge API proxy module.'),
    labels: z
      .record(z.string().regex(/^[A-Za-z0-9._~-]+$/, 'labels are URL path segments'), labelSchema)
      .prefault({ default: {} })
      .describe('CA labels by name; `default` serves /.well-known/est/<op>, any other NAME serves /.well-known/est/NAME/<op>.'),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    for (const name of Object.keys(cfg.labels)) {
      if ((OPERATIONS as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['labels', name], message: 'a label must not be named like an EST operation' });
      }
      const label = cfg.labels[name]!;
      const skgType = label.serverkeygen_key.startsWith('rsa') ? 'rsa' : label.serverkeygen_key;
      if (!label.key_types.includes(skgType as never) || (skgType === 'rsa' && Number(label.serverkeygen_key.slice(3)) < label.rsa_min_bits)) {
        ctx.addIssue({ code: 'custom', path: ['labels', name, 'serverkeygen_key'], message: `${label.serverkeygen_key} is not allowed by key_types/rsa_min_bits of this label` });
      }
      const needsCa = label.mode === 'issue' || label.fallback === 'issue';
      if (needsCa && !cfg.cas[label.ca]) ctx.addIssue({ code: 'custom', path: ['labels', name, 'ca'], message: `no CA named "${label.ca}" in [cas]` });
      if (label.mode === 'forward' && !label.upstream) ctx.addIssue({ code: 'custom', path: ['labels', name, 'upstream'], message: 'mode = "forward" needs an [upstream] table' });
      if (label.mode === 'issue' && label.fallback !== 'none') ctx.addIssue({ code: 'custom', path: ['labels', name, 'fallback'], message: 'fallback applies only to mode = "forward"' });
      const authority = label.ext_key_usage.includes('cmcRA');
      label.grants.forEach((g, gi) => {
        if (!g.allow_ca && !authority) return;
        for (const p of Array.isArray(g.identity) ? g.identity : [g.identity]) {
          if (!explicitIdentity(p)) {
            ctx.addIssue({
              code: 'custom',
              path: ['labels', name, 'grants', gi, 'identity'],
              message: `"${p}" names no role, so a device certificate of that name would meet this grant for ${g.allow_ca ? 'CA' : 'RA'} certificates: use cert:ra/NAME, cert:device/NAME or one user:NAME`,
            });
          }
        }
      });
      if (label.csrattrs === 'none') {
        if (label.require_pop) ctx.addIssue({ code: 'custom', path: ['labels', name, 'csrattrs'], message: 'require_pop needs csrattrs = "policy": clients learn from csrattrs that the CSR must carry tls-unique' });
        if (label.csr_attributes.length) ctx.addIssue({ code: 'custom', path: ['labels', name, 'csr_attributes'], message: 'csr_attributes are listed only with csrattrs = "policy"' });
      }
      if (label.mode === 'issue' && label.forward_serverkeygen) ctx.addIssue({ code: 'custom', path: ['labels', name, 'forward_serverkeygen'], message: 'forward_serverkeygen applies only to mode = "forward" (a label that issues always offers serverkeygen)' });
      if (label.rsa_max_bits < label.rsa_min_bits) ctx.addIssue({ code: 'custom', path: ['labels', name, 'rsa_max_bits'], message: `must not be below rsa_min_bits (${label.rsa_min_bits})` });
      const up = label.upstream;
      if (up && !!up.cert !== !!up.key) ctx.addIssue({ code: 'custom', path: ['labels', name, 'upstream', up.cert ? 'key' : 'cert'], message: 'cert and key go together' });
      if (up && !!up.username !== !!up.password_file) ctx.addIssue({ code: 'custom', path: ['labels', name, 'upstream', up.username ? 'password_file' : 'username'], message: 'username and password_file go together' });
    }
    cfg.proxy.forEach((r, i) => {
      if (r.prefix.startsWith('/.well-known/est/') || r.prefix === '/.well-known/') ctx.addIssue({ code: 'custom', path: ['proxy', i, 'prefix'], message: 'EST paths are served by the gateway itself' });
      if (!!r.cert !== !!r.key) ctx.addIssue({ code: 'custom', path: ['proxy', i, r.cert ? 'key' : 'cert'], message: 'cert and key go together' });
      if (r.pass_authorization && r.identities.some((id) => /^user:/i.test(id))) {
        ctx.addIssue({ code: 'custom', path: ['proxy', i, 'identities'], message: 'with pass_authorization the Authorization header belongs to the target: user: identities cannot authenticate here' });
      }
      if (r.client_trust.length === 0 && r.identities.some((id) => /^cert:/i.test(id))) {
        ctx.addIssue({ code: 'custom', path: ['proxy', i, 'client_trust'], message: 'cert: identities need client_trust anchors to authenticate against' });
      }
    });
    for (const [name, ca] of Object.entries(cfg.cas)) {
      if (ca.create === 'request' && !ca.request) ctx.addIssue({ code: 'custom', path: ['cas', name, 'request'], message: 'create = "request" needs a [request] table naming the parent' });
      if (ca.create === 'subordinate') {
        if (!ca.parent) ctx.addIssue({ code: 'custom', path: ['cas', name, 'parent'], message: 'a subordinate CA needs a parent' });
        else if (!cfg.cas[ca.parent] || ca.parent === name) ctx.addIssue({ code: 'custom', path: ['cas', name, 'parent'], message: `no other CA named "${ca.parent}"` });
      }
    }
    if (!cfg.server.tls_cert && !cfg.cas[cfg.server.tls_issuer]) {
      ctx.addIssue({ code: 'custom', path: ['server', 'tls_issuer'], message: `no CA named "${cfg.server.tls_issuer}" in [cas]` });
    }
    if (cfg.server.headers_timeout > cfg.server.request_timeout) {
      ctx.addIssue({ code: 'custom', path: ['server', 'headers_timeout'], message: 'must not exceed request_timeout (Node refuses to start otherwise)' });
    }
    if (!!cfg.server.tls_cert !== !!cfg.server.tls_key) {
      ctx.addIssue({ code: 'custom', path: ['server', cfg.server.tls_cert ? 'tls_key' : 'tls_cert'], message: 'tls_cert and tls_key go together' });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Validity of a label's certificates in (possibly fractional) days. */
export const labelValidityDays = (l: Pick<LabelConfig, 'cert_days' | 'cert_lifetime'>): number =>
  l.cert_lifetime === undefined ? l.cert_days : parseDurationMs(l.cert_lifetime) / 86_400_000;

/** "30 day(s)" or the configured duration, for banners. */
export const labelValidityText = (l: Pick<LabelConfig, 'cert_days' | 'cert_lifetime'>): string => l.cert_lifetime ?? `${l.cert_days} day(s)`;
export type LabelConfig = z.infer<typeof labelSchema>;
export type GrantConfig = z.infer<typeof grantSchema>;
export type CaConfig = z.infer<typeof caSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type ProxyRouteConfig = z.infer<typeof proxyRouteSchema>;
