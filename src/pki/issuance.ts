// Certificate issuance in two steps (boulder's issuance/cert.go): `prepare` checks
// the request against the CA and builds the to-be-signed bytes; `sign` signs only
// what this signer prepared. Everything that does not change per request is
// encoded once in the constructor.
import { randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { EstError, forbidden, malformed } from '../errors.js';
import { bitString, ctx, seq, time, unsignedInteger } from '../est/der.js';
import {
  type KeyUsageName, encodeAuthorityKeyIdentifier, encodeBasicConstraints, encodeKeyUsage, encodeOidList,
  encodeSubjectKeyIdentifier, extension,
} from '../est/extensions.js';
import { OID } from '../est/oids.js';
import { signatureAlgorithmFor } from '../est/signature.js';
import { caKeyIdentifier, keyIdentifier, type KeyInfo } from '../est/spki.js';
import type { CaMaterial } from './ca.js';

export interface IssueRequest {
  /** Subject Name DER, copied verbatim. */
  subjectDer: Buffer;
  /** SubjectPublicKeyInfo DER, copied verbatim. */
  spki: Buffer;
  key: KeyInfo;
  /** subjectAltName extension value (GeneralNames DER), already allowed by policy. */
  subjectAltNameDer?: Buffer;
  validityDays: number;
  extKeyUsage: string[];
  /** Issue a CA certificate (basicConstraints CA:TRUE). */
  ca?: { pathLen?: number };
  /** The certificate spans no longer than this, backdating included (a renewal that must not outlive its class). */
  maxSpanMs?: number;
  /** Extra, already-encoded extensions (for example the islanded marker). */
  extraExtensions?: Buffer[];
}

const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const EMPTY_NAME = Buffer.from([0x30, 0x00]);
/** Backdating covers clients whose clocks run a little behind. */
export const BACKDATE_MS = 5 * 60_000;

const brand = new WeakSet<PreparedCertificate>();

/** A certificate that passed `prepare`; only its Signer can sign it. */
export class PreparedCertificate {
  private constructor(
    readonly signer: Signer,
    readonly tbs: Buffer,
    readonly serialHex: string,
    readonly notBefore: Date,
    readonly notAfter: Date,
  ) {}

  /** @internal */
  static create(signer: Signer, tbs: Buffer, serialHex: string, notBefore: Date, notAfter: Date): PreparedCertificate {
    const p = new PreparedCertificate(signer, tbs, serialHex, notBefore, notAfter);
    brand.add(p);
    return p;
  }
}

export interface IssuedCertificate {
  der: Buffer;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

// One getrandom call per 256 serials instead of one per serial.
const POOL_SERIALS = 256;
let pool = Buffer.alloc(0);
let poolAt = 0;

/** 128 random bits from the CSPRNG; RFC 5280 wants a positive, non-zero serial (unsignedInteger keeps it positive). */
export function randomSerial(): Buffer {
  if (poolAt >= pool.length) {
    pool = randomBytes(16 * POOL_SERIALS);
    poolAt = 0;
  }
  const b = Buffer.from(pool.subarray(poolAt, poolAt + 16));
  pool.fill(0, poolAt, poolAt + 16); // a serial's bytes do not linger for a later reader
  poolAt += 16;
  if (b.every((x) => x === 0)) b[15] = 1;
  return b;
}

/** Hex of a serial as X.509 tools print it: the INTEGER's magnitude, no leading zero bytes. */
export function serialHex(magnitude: Uint8Array): string {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  return Buffer.from(magnitude.subarray(i)).toString('hex');
}

const eeKeyUsage = (key: KeyInfo): KeyUsageName[] =>
  key.type === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];

export class Signer {
  private readonly key: KeyObject;
  private readonly digest: string | null;
  private readonly sigAlgDer: Buffer;
  private readonly issuerDer: Buffer;
  private readonly akiExt: Buffer;
  private readonly eeBasicConstraints = extension(OID.basicConstraints, true, encodeBasicConstraints({ ca: false }));
  private readonly keyUsageExt = new Map<string, Buffer>();
  private readonly ekuExt = new Map<string, Buffer>();

  constructor(readonly ca: CaMaterial) {
    this.key = ca.key;
    const alg = signatureAlgorithmFor(ca.key);
    this.digest = alg.digest;
    this.sigAlgDer = alg.der;
    this.issuerDer = ca.fields.subjectDer;
    this.akiExt = extension(OID.authorityKeyIdentifier, false, encodeAuthorityKeyIdentifier(caKeyIdentifier(ca.fields)));
  }

  prepare(req: IssueRequest, now: Date = new Date()): PreparedCertificate {
    const caFields = this.ca.fields;
    if (caFields.notAfter.getTime() <= now.getTime()) {
      throw new EstError('unavailable', `CA "${this.ca.name}" expired on ${caFields.notAfter.toISOString()}`, { retryAfter: 3600 });
    }
    if (!(req.validityDays > 0)) throw malformed('validity must be positive');
    let validityMs = req.validityDays * 86_400_000;
    // v + min(BACKDATE, v/10) <= span
    if (req.maxSpanMs !== undefined) validityMs = Math.min(validityMs, req.maxSpanMs - Math.min(BACKDATE_MS, req.maxSpanMs / 11));
    // clock-skew allowance, but never so much that a short-lived certificate looks half used at birth
    const notBefore = new Date(Math.max(now.getTime() - Math.min(BACKDATE_MS, validityMs / 10), caFields.notBefore.getTime()));
    // RFC 5280 6.1.3: a certificate may not outlive its issuer's validity
    const notAfter = new Date(Math.min(now.getTime() + validityMs, caFields.notAfter.getTime()));

    const emptySubject = req.subjectDer.equals(EMPTY_NAME);
    if (emptySubject && !req.subjectAltNameDer) throw forbidden('the request has neither a subject nor a subjectAltName');

    const exts: Buffer[] = [];
    if (req.ca) {
      const caPathLen = caFields.basicConstraints?.pathLen;
      if (caPathLen === 0) throw forbidden(`CA "${this.ca.name}" has pathLen 0 and cannot issue CA certificates`);
      let pathLen = req.ca.pathLen;
      if (caPathLen !== undefined) {
        if (pathLen !== undefined && pathLen >= caPathLen) {
          throw forbidden(`requested pathLen ${pathLen} must be below the issuing CA's pathLen ${caPathLen}`);
        }
        pathLen ??= caPathLen - 1;
      }
      exts.push(extension(OID.basicConstraints, true, encodeBasicConstraints(pathLen === undefined ? { ca: true } : { ca: true, pathLen })));
      exts.push(extension(OID.keyUsage, true, encodeKeyUsage(['digitalSignature', 'keyCertSign', 'cRLSign'])));
    } else {
      exts.push(this.eeBasicConstraints);
      exts.push(this.keyUsageFor(req.key));
      if (req.extKeyUsage.length) exts.push(this.ekuFor(req.extKeyUsage));
    }
    exts.push(extension(OID.subjectKeyIdentifier, false, encodeSubjectKeyIdentifier(keyIdentifier(req.spki))));
    exts.push(this.akiExt);
    if (req.subjectAltNameDer) exts.push(extension(OID.subjectAltName, emptySubject, req.subjectAltNameDer));
    if (req.extraExtensions) exts.push(...req.extraExtensions);

    const serial = randomSerial();
    const tbs = seq(
      VERSION_3,
      unsignedInteger(serial),
      this.sigAlgDer,
      this.issuerDer,
      seq(time(notBefore), time(notAfter)),
      req.subjectDer,
      req.spki,
      ctx(3, true, seq(...exts)),
    );
    return PreparedCertificate.create(this, tbs, serialHex(serial), notBefore, notAfter);
  }

  sign(p: PreparedCertificate): IssuedCertificate {
    if (!brand.has(p) || p.signer !== this) throw new Error('refusing to sign a certificate this signer did not prepare');
    const sig = nodeSign(this.digest, p.tbs, this.key);
    return { der: seq(p.tbs, this.sigAlgDer, bitString(sig)), serialHex: p.serialHex, notBefore: p.notBefore, notAfter: p.notAfter };
  }

  issue(req: IssueRequest, now?: Date): IssuedCertificate {
    return this.sign(this.prepare(req, now));
  }

  private keyUsageFor(key: KeyInfo): Buffer {
    const names = eeKeyUsage(key);
    const k = names.join();
    let ext = this.keyUsageExt.get(k);
    if (!ext) this.keyUsageExt.set(k, (ext = extension(OID.keyUsage, true, encodeKeyUsage(names))));
    return ext;
  }

  private ekuFor(ekus: string[]): Buffer {
    const k = ekus.join();
    let ext = this.ekuExt.get(k);
    if (!ext) this.ekuExt.set(k, (ext = extension(OID.extKeyUsage, false, encodeOidList(ekus))));
    return ext;
  }
}

/** Self-signed certificate for a new root CA. */
export function selfSign(opts: { subjectDer: Buffer; key: KeyObject; spki: Buffer; days: number; pathLen?: number; now?: Date }): Buffer {
  const now = opts.now ?? new Date();
  const alg = signatureAlgorithmFor(opts.key);
  const ski = keyIdentifier(opts.spki);
  const bc = opts.pathLen === undefined ? { ca: true } : { ca: true, pathLen: opts.pathLen };
  const tbs = seq(
    VERSION_3,
    unsignedInteger(randomSerial()),
    alg.der,
    opts.subjectDer,
    seq(time(new Date(now.getTime() - BACKDATE_MS)), time(new Date(now.getTime() + opts.days * 86_400_000))),
    opts.subjectDer,
    opts.spki,
    ctx(3, true, seq(
      extension(OID.basicConstraints, true, encodeBasicConstraints(bc)),
      extension(OID.keyUsage, true, encodeKeyUsage(['digitalSignature', 'keyCertSign', 'cRLSign'])),
      extension(OID.subjectKeyIdentifier, false, encodeSubjectKeyIdentifier(ski)),
    )),
  );
  return seq(tbs, alg.der, bitString(nodeSign(alg.digest, tbs, opts.key)));
}
