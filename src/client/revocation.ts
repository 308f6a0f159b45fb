// Is the client's certificate revoked? Asked of the CRLs its own gateway serves
// (GET /crl/ lists them by issuer and key identifier, GET /crl/NAME.crl is one):
// a device often cannot reach the CA's distribution point, but always reaches
// its gateway. Each CRL is verified against the CA certificate of the chain it
// claims, with Node's crypto; anything that cannot be verified answers
// "unknown", with why, never "not revoked".
import { request } from 'node:https';
import { EstError } from '../errors.js';
import { fromPemAll, toPem } from '../est/base64.js';
import { type CertFields, parseCertificate } from '../est/certificate.js';
import { type CrlRevoked, type ParsedCrl, crlSignatureProblem, parseCrl, serialKey } from '../est/crl.js';
import { type CrlIndexEntry, crlIndexEntry, parseCrlIndex } from '../est/crl-index.js';
import { formatName } from '../est/name.js';
import { caKeyIdentifier } from '../est/spki.js';
import { buildChain, isSelfSigned } from './chain.js';
import { X509Certificate } from 'node:crypto';
import type { CertSpec } from './spec.js';
import { loadTrustAnchors } from './trust.js';

/** A verified CRL, with its entries by serial (lower-case hex without leading zero bytes). */
export interface ClientCrl extends ParsedCrl {
  bySerial: Map<string, CrlRevoked>;
}

/** Serials compared as X.509 tools print them: lower-case hex without the sign's leading zero bytes. */
export const normalSerial = (hex: string): string => hex.toLowerCase().replace(/^(00)+(?=.)/, '');

/** The CA's key identifier as our gateways name it in GET /crl/: subjectKeyIdentifier, or the SHA-1 of the key. */
const caKeyId = (f: CertFields): string => caKeyIdentifier(f).toString('hex');

export type RevocationReport =
  | { state: 'revoked'; checkedAt: string; serial: string; subject: string; revokedAt: string; reason: string; crl: string; crlNumber: number }
  | { state: 'good'; checkedAt: string; crlNumber: number; nextUpdate: string }
  | { state: 'unknown'; checkedAt: string; why: string };

/** Where the CRLs are asked for: the origin of the certificate's EST URL, verified like EST itself. */
export interface CrlTarget {
  /** The EST URL; the CRLs live at its origin's /crl/. */
  url: string;
  /** PEM anchors for the gateway's TLS certificate; absent: the system's roots. */
  trust?: string;
  timeoutMs: number;
}

const MAX_INDEX_BYTES = 1 << 20;
const MAX_CRL_BYTES = 16 << 20;
/** A gateway whose clock runs a little ahead still signs usable CRLs. */
const CLOCK_SKEW_MS = 5 * 60_000;


/** One GET over HTTPS; resolves with status and body, rejects with a one-line `unavailable`. */
function httpsGet(t: CrlTarget, path: string, maxBytes: number): Promise<{ status: number; type: string; body: Buffer }> {
  const u = new URL(t.url);
  const where = `${u.origin}${path}`;
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 443, path, method: 'GET', agent: false, headers: { 'User-Agent': 'estgw-client', Accept: '*/*' }, ...(t.trust ? { ca: t.trust } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
        res.on('error', (e) => reject(new EstError('unavailable', `GET ${where}: ${e.message}`)));
      },
    );
    req.setTimeout(t.timeoutMs, () => req.destroy(new Error(`no answer within ${t.timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new EstError('unavailable', `GET ${where}: ${e.code ? `${e.code}: ` : ''}${e.message}`)));
    req.end();
  });
}


const badIndexEntry = (): never => {
  throw new EstError('badGateway', 'the CRL index has an entry without name, issuer, keyId and number');
};

/** A CRL as fetched and verified, or why there is none; kept for one round of checks so each is fetched once. */
export type CrlResult = { ok: true; name: string; crl: ClientCrl } | { ok: false; why: string };

/**
 * Fetches and verifies CRLs for one round of checks: the index once per
 * gateway, each CRL once per gateway and CA certificate.
 */
export class CrlRound {
  private readonly indexes = new Map<string, Promise<CrlIndexEntry[]>>();
  private readonly results = new Map<string, Promise<CrlResult>>();

  /**
   * `newest`, given a verified CRL, may answer a newer one of the same CA key
   * seen before: a gateway (or whoever sits in its place) that replays an older,
   * still current CRL cannot hide a revocation already seen.
   */
  constructor(
    readonly now: number,
    private readonly newest: (crl: ClientCrl) => ClientCrl = (c) => c,
  ) {}

  private index(t: CrlTarget): Promise<CrlIndexEntry[]> {
    const key = `${new URL(t.url).origin}\n${t.trust ?? ''}`;
    let p = this.indexes.get(key);
    if (!p) {
      p = httpsGet(t, '/crl/', MAX_INDEX_BYTES).then((r) => {
        if (r.status !== 200) throw new EstError('unavailable', `the gateway serves no CRL index (GET /crl/ answered ${r.status})`);
        return parseCrlIndex(r.body).map((e) => crlIndexEntry(e) ?? badIndexEntry());
      });
      this.indexes.set(key, p);
    }
    return p;
  }

  /** The CRL of the CA certificate `caDer`, verified against it. */
  crlOf(t: CrlTarget, caDer: Buffer): Promise<CrlResult> {
    const key = `${new URL(t.url).origin}\n${t.trust ?? ''}\n${caDer.toString('base64')}`;
    let p = this.results.get(key);
    if (!p) this.results.set(key, (p = this.fetchVerified(t, caDer)));
    return p;
  }

  /** Every CRL this round verified, once each (what `[crl] out` writes). */
  async verified(): Promise<ClientCrl[]> {
    const out = new Map<string, ClientCrl>();
    for (const r of await Promise.all(this.results.values())) if (r.ok) out.set(r.crl.der.toString('base64'), r.crl);
    return [...out.values()];
  }

  private async fetchVerified(t: CrlTarget, caDer: Buffer): Promise<CrlResult> {
    const ca = parseCertificate(caDer);
    const issuer = formatName(ca.subject);
    try {
      const keyId = caKeyId(ca);
      const candidates = (await this.index(t)).filter((e) => e.issuer === issuer && e.keyId === keyId).sort((a, b) => b.number - a.number);
      const entry = candidates[0];
      if (!entry) return { ok: false, why: `the gateway lists no CRL of "${issuer}"` };
      const r = await httpsGet(t, `/crl/${entry.name}.crl`, MAX_CRL_BYTES);
      if (r.status !== 200) return { ok: false, why: `GET /crl/${entry.name}.crl answered ${r.status}` };
      let crl: ClientCrl;
      try {
        const parsed = parseCrl(r.body);
        crl = { ...parsed, bySerial: new Map(parsed.revoked.map((e) => [e.serialHex, e])) };
      } catch (e) {
        return { ok: false, why: `/crl/${entry.name}.crl: ${(e as Error).message}` };
      }
      const bad = crlSignatureProblem(crl, caDer);
      if (bad) return { ok: false, why: `/crl/${entry.name}.crl is not the CRL of "${issuer}": ${bad}` };
      return { ok: true, name: entry.name, crl: this.newest(crl) };
    } catch (e) {
      return { ok: false, why: (e as Error).message };
    }
  }
}

/** Which CA key signed a CRL: its issuer name and authority key identifier. */
export const crlKey = (c: ClientCrl): string => `${c.issuerDer.toString('hex')}:${c.keyId?.toString('hex') ?? ''}`;

/** Leaf first, up to the anchor: from the certificate file, to the configured anchors (or the file's own root). */
export function chainOf(certPem: string, anchors: Buffer[]): Buffer[] | undefined {
  const certs = fromPemAll(certPem, 'CERTIFICATE');
  const [leaf, ...rest] = certs;
  if (!leaf) return undefined;
  const roots = anchors.length ? anchors : rest.filter((d) => isSelfSigned(new X509Certificate(d)));
  return buildChain(leaf, rest, roots);
}

/**
 * Checks every certificate of `chain` but the anchor against its issuer's CRL:
 * revoked when any is listed (a revocation stays one, even on a stale CRL);
 * not revoked only when every CRL was found, verified and is current.
 */
export async function checkChain(chain: Buffer[], t: CrlTarget, round: CrlRound): Promise<RevocationReport> {
  const checkedAt = new Date(round.now).toISOString();
  const unknown = (why: string): RevocationReport => ({ state: 'unknown', checkedAt, why });
  if (chain.length < 2) return unknown('the certificate does not chain to the trust anchor');
  const results = await Promise.all(chain.slice(1).map((ca) => round.crlOf(t, ca)));
  const problems: string[] = [];
  let leafNumber = 0;
  let nextUpdate = Infinity;
  for (const [i, r] of results.entries()) {
    const cert = parseCertificate(chain[i]!);
    if (!r.ok) {
      problems.push(r.why);
      continue;
    }
    const hit = r.crl.bySerial.get(serialKey(cert.serial));
    if (hit) {
      return {
        state: 'revoked', checkedAt, serial: serialKey(cert.serial), subject: formatName(cert.subject), revokedAt: hit.revokedAt.toISOString(), reason: hit.reason, crl: r.name, crlNumber: Number(r.crl.number),
      };
    }
    if (r.crl.nextUpdate.getTime() <= round.now) problems.push(`the CRL of "${formatName(parseCertificate(chain[i + 1]!).subject)}" expired at ${r.crl.nextUpdate.toISOString()}`);
    else if (r.crl.thisUpdate.getTime() > round.now + CLOCK_SKEW_MS) problems.push(`the CRL of "${formatName(parseCertificate(chain[i + 1]!).subject)}" is not valid before ${r.crl.thisUpdate.toISOString()} (check the clocks)`);
    if (i === 0) leafNumber = Number(r.crl.number);
    nextUpdate = Math.min(nextUpdate, r.crl.nextUpdate.getTime());
  }
  if (problems.length) return unknown(problems.join('; '));
  return { state: 'good', checkedAt, crlNumber: leafNumber, nextUpdate: new Date(nextUpdate).toISOString() };
}

/** The certificate file of `spec` (leaf first), checked against the CRLs of the gateway it enrolls at. */
export async function checkCertificate(spec: Pick<CertSpec, 'url' | 'trustFiles' | 'timeoutMs'>, certPem: string, round: CrlRound): Promise<RevocationReport> {
  const checkedAt = new Date(round.now).toISOString();
  let anchors: Buffer[];
  try {
    anchors = (await Promise.all(spec.trustFiles.map((f) => loadTrustAnchors(f)))).flat();
  } catch (e) {
    return { state: 'unknown', checkedAt, why: (e as Error).message };
  }
  const chain = chainOf(certPem, anchors);
  if (!chain) return { state: 'unknown', checkedAt, why: 'the certificate file does not chain to the trust anchor' };
  const trust = anchors.length ? anchors.map((d) => toPem('CERTIFICATE', d)).join('') : undefined;
  return checkChain(chain, { url: spec.url, ...(trust ? { trust } : {}), timeoutMs: spec.timeoutMs }, round);
}

/** One line for status and logs. */
export function describeRevocation(r: RevocationReport): string {
  switch (r.state) {
    case 'revoked':
      return `REVOKED on ${r.revokedAt}: ${r.reason} (serial ${r.serial}, ${r.subject}; CRL ${r.crl} #${r.crlNumber}, checked ${r.checkedAt})`;
    case 'good':
      return `not revoked (CRL #${r.crlNumber}, next update ${r.nextUpdate}; checked ${r.checkedAt})`;
    default:
      return `unknown: ${r.why} (checked ${r.checkedAt})`;
  }
}
