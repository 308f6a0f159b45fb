// One renewal attempt for one certificate: choose credentials (the ladder), build
// the CSR, ask the server, verify what comes back, and only then replace the pair.
import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { EstError, isEstError } from '../errors.js';
import { toPem } from '../est/base64.js';
import { buildCsr } from '../est/csr-build.js';
import { type GeneralName, buildName, generalNamesKey, namesEqual, parseNameDer } from '../est/name.js';
import { type KeySpec, privateKeyPem, spkiDer } from '../pki/keys.js';
import type { Logger } from '../util/log.js';
import { isSelfSigned } from './chain.js';
import { type CsrSource, type EnrollResult, EstClient, type EstClientOptions } from '../transport/est-client.js';
import { type LoadedPair, isValidAt, parsePair, readPairFiles } from './pair.js';
import { normalSerial } from './revocation.js';
import type { CertSpec, RenewMethod } from './spec.js';
import type { PairStore } from './store.js';
import { ensureTrust } from './trust.js';
import { type VerifiedIssued, verifyIssued } from './verify-issued.js';

/** The operations the daemon needs; tests substitute a fake. */
export interface EstOps {
  cacerts(): Promise<Buffer[]>;
  simpleenroll(csr: CsrSource): Promise<EnrollResult>;
  simplereenroll(csr: CsrSource): Promise<EnrollResult>;
  close(): void;
}
export type ClientFactory = (o: EstClientOptions) => EstOps;
export const defaultClientFactory: ClientFactory = (o) => new EstClient(o);

/** Which TLS client certificate a rung presents (Basic goes along on every rung when configured). */
export type Credential = 'current' | 'identity' | 'bootstrap' | 'none';

export interface Rung {
  op: RenewMethod;
  credential: Credential;
  tls?: LoadedPair;
}

export interface LadderInput {
  now: number;
  current?: LoadedPair;
  identity?: LoadedPair;
  bootstrap?: LoadedPair;
}

const sameNames = (spec: CertSpec, p: LoadedPair) =>
  namesEqual(parseNameDer(buildName(spec.subject)), p.leaf.subject) &&
  generalNamesKey(spec.subjectAltNames) === generalNamesKey(p.leaf.subjectAltNames);

/**
 * The authentication ladder, tried in order until one is not refused:
 *  1. the certificate being renewed, while valid (RFC 7030 §4.2.2 reenroll presents it;
 *     skipped when the configured names changed, since reenroll must keep them);
 *  2. the EST identity certificate, while valid;
 *  3. the bootstrap certificate (IoT Edge's fallback once the identity has expired);
 *  4. Basic alone, or nothing, when no certificate applies.
 */
export function planRungs(spec: CertSpec, l: LadderInput): Rung[] {
  const rungs: Rung[] = [];
  if (l.current && isValidAt(l.current, l.now) && sameNames(spec, l.current)) rungs.push({ op: spec.method, credential: 'current', tls: l.current });
  if (l.identity && isValidAt(l.identity, l.now)) rungs.push({ op: 'simpleenroll', credential: 'identity', tls: l.identity });
  if (l.bootstrap) rungs.push({ op: 'simpleenroll', credential: 'bootstrap', tls: l.bootstrap });
  else if (rungs.length === 0 || spec.auth.username !== undefined) rungs.push({ op: 'simpleenroll', credential: 'none' });
  return rungs;
}

export interface RenewDeps {
  now(): number;
  logger: Logger;
  makeClient: ClientFactory;
  generateKey(spec: KeySpec): Promise<KeyObject>;
  /** The EST identity pair, by certificate name. */
  identityPair(name: string): Promise<LoadedPair | undefined>;
}

/** Carried between attempts: a key whose request the server holds (202) is reused when resending. */
export interface RenewState {
  pendingKey?: KeyObject;
  /** The current certificate is revoked: enroll a replacement through the bootstrap credential, with a new key. */
  replaceRevoked?: boolean;
}

/** The server refused to renew because the certificate is revoked: no other credential may paper over that. */
export class RevokedByServer extends EstError {
  constructor(cause: EstError) {
    super('forbidden', cause.message, { cause });
  }
}

/**
 * A 403 whose reason says that this certificate, or a CA of its own chain, is
 * revoked, as est-gateway words it: "the certificate being renewed (serial X)
 * was revoked …", "the client certificate's issuing CA "…" (serial Y) was
 * revoked …". Another certificate's revocation on the way (a layer's RA
 * certificate, upstream) is the layer's problem: a failure to retry, never a
 * reason to stop renewing.
 */
function saysRevoked(e: unknown, serialHex: string): e is EstError {
  if (!isEstError(e, 'forbidden')) return false;
  const own = /\bthe (?:client certificate|certificate being renewed) \(serial ([0-9a-f]+)\) was revoked\b/i.exec(e.message);
  if (own) return normalSerial(own[1]!) === normalSerial(serialHex);
  return /\bthe (?:client certificate|certificate being renewed)'s issuing CA\b.*\bwas revoked\b/i.test(e.message);
}

export interface RenewOutcome {
  verified: VerifiedIssued;
  op: RenewMethod;
  credential: Credential;
  newKey: boolean;
}

export async function readCurrentPair(store: PairStore, name: string, logger: Logger): Promise<LoadedPair | undefined> {
  const pem = await store.read();
  if (!pem) return undefined;
  try {
    return parsePair(pem, store.certPath);
  } catch (e) {
    logger.warn({ cert: name, err: (e as Error).message }, 'stored pair is unusable; enrolling anew');
    return undefined;
  }
}

function csrFor(spec: CertSpec, key: KeyObject, subjectDer: Buffer, sans: GeneralName[]): CsrSource {
  return (ctx) =>
    buildCsr({
      subject: subjectDer,
      privateKey: key,
      subjectAltNames: sans,
      ...(ctx.challengePassword !== undefined ? { challengePassword: ctx.challengePassword } : {}),
      ...(spec.ca ? { basicConstraints: { ca: true, pathLen: 0 }, keyUsage: ['keyCertSign' as const] } : {}),
    });
}

async function readPendingKey(store: PairStore, name: string, log: Logger): Promise<KeyObject | undefined> {
  const pem = await store.readPendingKey();
  if (pem === undefined) return undefined;
  try {
    return createPrivateKey(pem);
  } catch (e) {
    log.warn({ cert: name, err: (e as Error).message }, 'the stored key of a held request is unreadable; starting a new request');
    await store.clearPendingKey();
    return undefined;
  }
}

export async function renewOnce(spec: CertSpec, store: PairStore, deps: RenewDeps, state: RenewState): Promise<RenewOutcome> {
  const log = deps.logger;
  const anchors = await ensureTrust({ files: spec.trustFiles, url: spec.url, logger: log, ...(spec.pin ? { pin: spec.pin } : {}), ...(spec.label ? { label: spec.label } : {}) });
  const trustPem = anchors.length ? anchors.map((d) => toPem('CERTIFICATE', d)).join('') : undefined;
  const current = await readCurrentPair(store, spec.name, log);
  const identity = spec.auth.identity && spec.auth.identity !== spec.name ? await deps.identityPair(spec.auth.identity) : undefined;
  // what went wrong on the way, appended to the final error so the status says why each credential was not used
  const notes: string[] = [];
  let bootstrap: LoadedPair | undefined;
  if (spec.auth.bootstrapCert && spec.auth.bootstrapKey) {
    bootstrap = await readPairFiles(spec.auth.bootstrapCert, spec.auth.bootstrapKey).catch((e: Error) => {
      log.warn({ cert: spec.name, err: e.message }, 'bootstrap credential unusable');
      notes.push(`bootstrap credential unusable: ${e.message}`);
      return undefined;
    });
  }
  // a revoked certificate is replaced, never renewed: only the bootstrap credential, never the revoked key
  const replacing = state.replaceRevoked === true;
  if (replacing && !bootstrap && spec.auth.username === undefined) {
    throw new EstError('forbidden', `the certificate is revoked and no bootstrap credential (bootstrap_cert, or username and password) is there to replace it${notes.length ? ` (${notes.join('; ')})` : ''}`);
  }
  const ladder = replacing ? { now: deps.now(), ...(bootstrap ? { bootstrap } : {}) } : { now: deps.now(), ...(current ? { current } : {}), ...(identity ? { identity } : {}), ...(bootstrap ? { bootstrap } : {}) };
  const rungs = planRungs(spec, ladder);

  // a request the server held (202) goes again with its key, also after a restart
  state.pendingKey ??= await readPendingKey(store, spec.name, log);
  if (replacing && state.pendingKey && current && spkiDer(state.pendingKey).equals(current.leaf.spki)) state.pendingKey = undefined;
  const key = state.pendingKey ?? (!spec.policy.rotateKey && current && !replacing ? current.key : await deps.generateKey(spec.keyType));
  for (const [i, rung] of rungs.entries()) {
    const reenroll = rung.op === 'simplereenroll' && rung.credential === 'current' && current;
    // §4.2.2: a reenroll CSR carries the Subject and SubjectAltName of the certificate renewed, as encoded there
    const subjectDer = reenroll ? current.leaf.subjectDer : buildName(spec.subject);
    const sans = reenroll ? current.leaf.subjectAltNames : spec.subjectAltNames;
    const client = deps.makeClient({
      url: spec.url,
      ...(trustPem ? { trust: trustPem } : {}),
      pop: spec.pop,
      timeoutMs: spec.timeoutMs,
      pendingBudgetMs: 0,
      logger: log,
      ...(spec.label ? { label: spec.label } : {}),
      ...(spec.auth.username !== undefined && spec.auth.password !== undefined ? { username: spec.auth.username, password: spec.auth.password } : {}),
      ...(spec.auth.basicAuth ? { basicAuth: spec.auth.basicAuth } : {}),
      ...(rung.tls ? { clientCert: { cert: rung.tls.certPem, key: rung.tls.keyPem } } : {}),
    });
    try {
      log.info({ cert: spec.name, op: rung.op, credential: rung.credential, newKey: key !== current?.key }, 'requesting certificate');
      const res = await client[rung.op](csrFor(spec, key, subjectDer, sans));
      // Like aziot, take the chain from /cacerts too; unlike aziot, a failing /cacerts is not fatal when the answer already chains.
      const cacerts = await client.cacerts().catch((e: Error) => {
        log.debug({ cert: spec.name, err: e.message }, 'cacerts failed; verifying with the enrollment answer only');
        return [] as Buffer[];
      });
      const verified = verifyIssued({
        certificate: res.certificate,
        key,
        subjectDer,
        // no configured anchor: the roots /cacerts gave over the TLS connection the system's roots verified
        anchors: anchors.length ? anchors : cacerts.filter((d) => isSelfSigned(new X509Certificate(d))),
        intermediates: [...res.extra, ...cacerts],
        now: deps.now(),
        requireCa: spec.ca,
      });
      await store.write({ certPem: verified.chain.map((d) => toPem('CERTIFICATE', d)).join(''), keyPem: privateKeyPem(key) });
      state.pendingKey = undefined;
      await store.clearPendingKey();
      return { verified, op: rung.op, credential: rung.credential, newKey: key !== current?.key };
    } catch (e) {
      if (isEstError(e, 'pending')) {
        state.pendingKey = key;
        await store.writePendingKey(privateKeyPem(key));
      }
      if (rung.credential === 'current' && current && saysRevoked(e, current.leaf.serial.toString('hex'))) throw new RevokedByServer(e);
      const authRefused = isEstError(e, 'unauthorized') || isEstError(e, 'forbidden');
      if (authRefused && i + 1 < rungs.length) {
        log.warn({ cert: spec.name, credential: rung.credential, err: (e as Error).message }, 'refused; trying the next credential');
        notes.push(`${rung.credential} credential refused: ${(e as EstError).kind}`);
        continue;
      }
      if (notes.length && e instanceof EstError) {
        throw new EstError(e.kind, `${e.message} (${notes.join('; ')})`, { cause: e, ...(e.retryAfter !== undefined ? { retryAfter: e.retryAfter } : {}) });
      }
      throw e;
    } finally {
      client.close();
    }
  }
  throw new EstError('internal', 'no credential to try');
}
