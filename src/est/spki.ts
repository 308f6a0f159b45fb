// SubjectPublicKeyInfo: what kind of key is this, and its RFC 5280 key identifier.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { malformed } from '../errors.js';
import { Tag, type Tlv, children, clip, content, decodeOid, expectTag, readWhole } from './der.js';
import { OID } from './oids.js';

export type KeyType = 'rsa' | 'p256' | 'p384' | 'p521' | 'ed25519';
export interface KeyInfo {
  type: KeyType;
  /** RSA modulus size or curve size. */
  bits: number;
  /** RSA public exponent, read from the SPKI so policy can judge it before any signature work. */
  exponent?: bigint;
}

const CURVES: Record<string, [KeyType, number]> = {
  [OID.secp256r1]: ['p256', 256],
  [OID.secp384r1]: ['p384', 384],
  [OID.secp521r1]: ['p521', 521],
};

/** A positive INTEGER in minimal two's complement (X.690 §8.3.2), as its magnitude. */
function positiveInteger(buf: Uint8Array, t: Tlv | undefined, what: string): Buffer {
  const c = content(buf, expectTag(t, Tag.INTEGER, what));
  if (c.length === 0) throw malformed(`invalid ${what}: empty INTEGER`);
  if (c[0]! & 0x80) throw malformed(`invalid ${what}: negative`);
  if (c[0] === 0 && (c.length === 1 || !(c[1]! & 0x80))) throw malformed(`invalid ${what}: not minimally encoded or zero`);
  return c[0] === 0 ? c.subarray(1) : c;
}

const bitLength = (magnitude: Buffer) => magnitude.length * 8 - Math.clz32(magnitude[0]!) + 24;

/** The key's type and size, and for RSA its exponent (RFC 3279 §2.3, RFC 5480, RFC 8410). */
export function describeSpki(spki: Uint8Array): KeyInfo {
  const top = readWhole(spki, 'SubjectPublicKeyInfo');
  const parts = children(spki, expectTag(top, Tag.SEQUENCE, 'SubjectPublicKeyInfo'));
  if (parts.length !== 2) throw malformed('invalid SubjectPublicKeyInfo: expected algorithm and key');
  const [alg, key] = parts;
  const algParts = children(spki, expectTag(alg, Tag.SEQUENCE, 'AlgorithmIdentifier'));
  if (algParts.length < 1 || algParts.length > 2) throw malformed('invalid AlgorithmIdentifier');
  const bitsContent = content(spki, expectTag(key, Tag.BIT_STRING, 'subjectPublicKey'));
  if (bitsContent.length < 2 || bitsContent[0] !== 0) throw malformed('invalid subjectPublicKey: not whole octets');
  const bs = bitsContent.subarray(1);
  const algOid = decodeOid(spki, algParts[0]!);
  const params = algParts[1];
  if (algOid === OID.ecPublicKey) {
    if (!params || params.tag !== Tag.OID) throw malformed('EC key parameters must be a named curve (RFC 5480 §2.1.1), not explicit or implicit ones');
    const curveOid = decodeOid(spki, params);
    const curve = CURVES[curveOid];
    if (!curve) throw malformed(`unsupported elliptic curve ${clip(curveOid)}`);
    const size = Math.ceil(curve[1] / 8);
    const uncompressed = bs[0] === 0x04 && bs.length === 1 + 2 * size;
    const compressed = (bs[0] === 0x02 || bs[0] === 0x03) && bs.length === 1 + size;
    if (!uncompressed && !compressed) throw malformed('invalid EC public key: not a point of the named curve\'s size');
    return { type: curve[0], bits: curve[1] };
  }
  if (algOid === OID.rsaEncryption) {
    if (!params || params.tag !== Tag.NULL || params.end !== params.contentStart) throw malformed('invalid RSA key: parameters must be NULL (RFC 3279 §2.3.1)');
    const rsa = children(bs, expectTag(readWhole(bs, 'RSAPublicKey'), Tag.SEQUENCE, 'RSAPublicKey'));
    if (rsa.length !== 2) throw malformed('invalid RSAPublicKey: expected modulus and exponent');
    const n = positiveInteger(bs, rsa[0], 'RSA modulus');
    const e = positiveInteger(bs, rsa[1], 'RSA exponent');
    return { type: 'rsa', bits: bitLength(n), exponent: BigInt(`0x${e.toString('hex')}`) };
  }
  if (algOid === OID.ed25519) {
    // RFC 8410 §3: parameters absent; the key is 32 octets
    if (params) throw malformed('invalid Ed25519 key: parameters must be absent (RFC 8410 §3)');
    if (bs.length !== 32) throw malformed('invalid Ed25519 key: not 32 octets');
    return { type: 'ed25519', bits: 256 };
  }
  throw malformed(`unsupported public key algorithm ${clip(algOid)}`);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const top = readWhole(spki, 'SubjectPublicKeyInfo');
  const key = children(spki, top)[1]!;
  return createHash('sha1').update(content(spki, key).subarray(1)).digest();
}

/** A CA's key as the certificates and CRLs it signs name it (authorityKeyIdentifier): its subjectKeyIdentifier, else method 1. */
export const caKeyIdentifier = (ca: { subjectKeyId?: Buffer | undefined; spki: Uint8Array }): Buffer => ca.subjectKeyId ?? keyIdentifier(ca.spki);

export const describeKey = (k: KeyInfo): string => (k.type === 'rsa' ? `RSA-${k.bits}` : k.type.toUpperCase());

/**
 * KeyObject for an SPKI. OpenSSL 3's DER decoder costs ~110 µs for a P-256 key
 * and ~150 µs for RSA; the JWK import path costs ~65 µs and ~4 µs, and this runs
 * once per enrollment, so go through JWK where the key form allows it.
 */
export function publicKeyFromSpki(spki: Buffer, info: KeyInfo = describeSpki(spki)): KeyObject {
  try {
    const top = readWhole(spki, 'SubjectPublicKeyInfo');
    const bits = content(spki, children(spki, top)[1]!).subarray(1);
    if (info.type === 'rsa') {
      const rsa = readWhole(bits, 'RSAPublicKey');
      const [n, e] = children(bits, rsa);
      const strip = (b: Buffer) => (b[0] === 0 ? b.subarray(1) : b);
      return createPublicKey({
        key: { kty: 'RSA', n: strip(content(bits, n!)).toString('base64url'), e: strip(content(bits, e!)).toString('base64url') },
        format: 'jwk',
      });
    }
    const crv = info.type === 'p256' ? 'P-256' : info.type === 'p384' ? 'P-384' : info.type === 'p521' ? 'P-521' : undefined;
    const size = Math.ceil(info.bits / 8);
    if (crv && bits[0] === 0x04 && bits.length === 1 + 2 * size) {
      return createPublicKey({
        key: { kty: 'EC', crv, x: bits.subarray(1, 1 + size).toString('base64url'), y: bits.subarray(1 + size).toString('base64url') },
        format: 'jwk',
      });
    }
  } catch {
    // fall through to the DER decoder, which gives the definitive answer
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}
