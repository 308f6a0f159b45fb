// The parent layer issues; this layer is its Registration Authority (RFC 7030
// §3.7): smallstep's stepcas, for one label. Policy, authentication and PoP were
// checked here before anything leaves the layer; upstream this gateway speaks
// with its own RA certificate and credentials, never the client's.
import { EstError, isEstError } from '../errors.js';
import { type CertFields, parseCertificate } from '../est/certificate.js';
import type { Csr } from '../est/csr.js';
import { formatName, generalNamesKey, namesEqual } from '../est/name.js';
import { EstClient, type EstClientOptions, type Operation } from '../transport/est-client.js';
import { type EstResponse, parseCacertsResponse, parseEnrollResponse, parseRetryAfter, parseServerKeygenResponse, reasonOf } from '../transport/response.js';
import { serialHex } from '../pki/issuance.js';
import { privateKeyDer, spkiDer } from '../pki/keys.js';
import type { Logger } from '../util/log.js';
import type { EnrollRequest, Issuer, IssuedResult, ServerKeygenResult } from './issuer.js';

/** RFC 9440: how the RA hands the certificate being renewed to the parent. */
export const CLIENT_CERT_HEADER = 'Client-Cert';
export const encodeClientCertHeader = (der: Buffer) => `:${der.toString('base64')}:`;

/** What a dead or sick parent tells the client: when to come back. */
const RETRY_AFTER_S = 30;
const MAX_RETRY_AFTER_S = 86_400;

export interface ForwardOptions {
  /** How relayed renewals reach the parent ([upstream] reenroll). */
  reenroll?: 'client-cert' | 'auto' | 'simpleenroll';
  logger?: Logger;
}

/** Which of the transport's timeouts it was, without its operation and address: "no answer within 1000 ms". */
function timeoutDetail(message: string): string {
  const m = /(no answer|did not complete the TLS handshake)\b.*? within (\d+) ms/.exec(message);
  return m ? `${m[1]} within ${m[2]} ms` : 'timeout';
}

export class ForwardIssuer implements Issuer {
  readonly mode = 'forward' as const;
  private readonly client: EstClient;
  private readonly where: string;
  private readonly reenroll: NonNullable<ForwardOptions['reenroll']>;

  constructor(options: EstClientOptions, private readonly o: ForwardOptions = {}) {
    this.client = new EstClient({ ...options, pop: 'never', pendingBudgetMs: 0 });
    this.where = `${this.client.url.host}${options.label ? ` label ${options.label}` : ''}`;
    this.reenroll = o.reenroll ?? 'client-cert';
  }

  async caCerts(): Promise<Buffer[]> {
    return this.parse('cacerts', await this.call('cacerts', 'GET'), parseCacertsResponse);
  }

  async enroll(req: EnrollRequest): Promise<IssuedResult> {
    const r = await this.send(req);
    const certs = this.parse(req.op, r, (x) => parseEnrollResponse(x, req.op));
    return this.result(this.approved(certs, req.csr.spki, req.csr, 'the requested key'));
  }

  /**
   * A renewal goes up as simplereenroll with the client's certificate in
   * Client-Cert, or, where the parent cannot take that (or there is no such
   * certificate: a renewal an RA below vouched for), as a simpleenroll this RA
   * vouches for: it checked the certificate and its names here.
   */
  private async send(req: EnrollRequest): Promise<EstResponse> {
    if (req.op !== 'simplereenroll') return this.call(req.op, 'POST', req.csr.der);
    if (!req.currentCert || this.reenroll === 'simpleenroll') return this.call('simpleenroll', 'POST', req.csr.der);
    try {
      return await this.call('simplereenroll', 'POST', req.csr.der, { [CLIENT_CERT_HEADER]: encodeClientCertHeader(req.currentCert) });
    } catch (e) {
      if (!isEstError(e, 'forbidden') && !isEstError(e, 'malformed')) throw e;
      if (this.reenroll === 'client-cert') {
        throw new EstError(e.kind, `${e.message} (a renewal relayed with RFC 9440 Client-Cert; if the parent does not take Client-Cert, set reenroll = "auto" or "simpleenroll" in [upstream])`);
      }
      this.o.logger?.warn({ parent: this.where, reason: e.message }, 'the parent refused a renewal relayed with Client-Cert: sending it as a simpleenroll this RA vouches for');
      return this.call('simpleenroll', 'POST', req.csr.der);
    }
  }

  async serverKeygen(req: EnrollRequest): Promise<ServerKeygenResult> {
    const r = await this.call('serverkeygen', 'POST', req.csr.der);
    const { privateKey, certificates } = this.parse('serverkeygen', r, parseServerKeygenResponse);
    const leaf = this.approved(certificates, spkiDer(privateKey), req.csr, 'the key it sent');
    return { ...this.result(leaf), privateKey: privateKeyDer(privateKey) };
  }

  close(): void {
    this.client.close();
  }

  /**
   * The certificate for `spki` in the parent's answer, if it carries exactly the
   * names this layer approved. A parent that is not est-gateway may change them;
   * what policy here did not see must not reach the device. No Retry-After and
   * no fallback: asking again would get the same answer.
   */
  private approved(certs: Buffer[], spki: Buffer, csr: Csr, whose: string): CertFields {
    let unreadable: string | undefined;
    const leaf = certs
      .map((der) => {
        try {
          return parseCertificate(der);
        } catch (e) {
          unreadable ??= (e as Error).message; // a chain certificate our codec cannot read is not ours to judge
          return undefined;
        }
      })
      .find((f) => f?.spki.equals(spki));
    if (!leaf) throw new EstError('badGateway', `parent ${this.where}: no certificate in its answer carries ${whose}${unreadable ? ` (one is unreadable: ${unreadable})` : ''}`);
    if (!namesEqual(leaf.subject, csr.subject)) {
      throw new EstError('badGateway', `parent ${this.where} issued for subject "${formatName(leaf.subject)}", not the approved "${formatName(csr.subject)}"`);
    }
    if (generalNamesKey(leaf.subjectAltNames) !== generalNamesKey(csr.subjectAltNames)) {
      throw new EstError('badGateway', `parent ${this.where} issued other subjectAltNames than approved`);
    }
    return leaf;
  }

  private result(f: CertFields): IssuedResult {
    // the serial as the parent's audit line and openssl print it: no DER sign byte
    return { certDer: f.der, serialHex: serialHex(f.serial), notAfter: f.notAfter, issuedBy: `parent ${this.where}` };
  }

  /** One exchange; the parent's refusals keep their meaning, its silence becomes 503/504. */
  private async call(op: Operation, method: 'GET' | 'POST', csr?: Buffer, headers?: Record<string, string>): Promise<EstResponse> {
    let response: EstResponse;
    try {
      ({ response } = await this.client.send(op, method, csr, headers));
    } catch (e) {
      if (isEstError(e, 'pending')) throw e;
      // an answer that arrived but is unusable (too large): the parent is there, and failing
      if (isEstError(e, 'badGateway')) throw new EstError('badGateway', `parent ${this.where} sent an unusable answer: ${e.message}`, { retryAfter: RETRY_AFTER_S, cause: e });
      // which timeout it was ("no answer within 1000 ms", "no TLS handshake within 500 ms") tells an operator what to tune
      if (isEstError(e, 'upstreamTimeout')) throw new EstError('upstreamTimeout', `parent ${this.where} did not answer in time (${timeoutDetail(e.message)})`, { retryAfter: RETRY_AFTER_S, cause: e });
      throw new EstError('unavailable', `parent ${this.where} is unreachable: ${(e as Error).message}`, { retryAfter: RETRY_AFTER_S, cause: e });
    }
    const s = response.status;
    if (s === 200) return response;
    const reason = reasonOf(response) || `status ${s}`;
    const text = `parent ${this.where}: ${reason}`;
    if (s === 400) throw new EstError('malformed', text);
    if (s === 401) throw new EstError('unauthorized', text);
    if (s === 403) throw new EstError('forbidden', text);
    if (s === 404) throw new EstError('notFound', text);
    // the parent knows best when it will be back; a day at most, so a typo upstream cannot park a fleet
    const named = parseRetryAfter(typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : undefined);
    const retryAfter = named === undefined ? RETRY_AFTER_S : Math.min(Math.max(named, 1), MAX_RETRY_AFTER_S);
    if (s === 503) throw new EstError('unavailable', text, { retryAfter });
    if (s === 504) throw new EstError('upstreamTimeout', text, { retryAfter });
    throw new EstError('badGateway', `${text} (answered ${s})`, { retryAfter: RETRY_AFTER_S });
  }

  private parse<T>(op: string, r: EstResponse, parse: (r: EstResponse) => T): T {
    try {
      return parse(r);
    } catch (e) {
      throw new EstError('badGateway', `parent ${this.where} sent an unusable ${op} answer: ${(e as Error).message}`, { retryAfter: RETRY_AFTER_S, cause: e });
    }
  }
}
