// SubjectPublicKeyInfo: what kind of key is this, and its RFC 5280 key identifier.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { malformed } from '../errors.js';
import { Tag, children, content, decodeOid, expectTag, readWhole } from './der.js';
import { OID } from './oids.js';

export type KeyType = 'rsa' | 'p256' | 'p384' | 'p521' | 'ed25519';
export interface KeyInfo {
  type: KeyType;
  /** RSA modulus size or curve size. */
  bits: number;
}

const CURVES: Record<string, [KeyType, number]> = {
  [OID.secp256r1]: ['p256', 256],
  [OID.secp384r1]: ['p384', 384],
  [OID.secp521r1]: ['p521', 521],
};

export function describeSpki(spki: Uint8Array): KeyInfo {
  const top = readWhole(spki, 'SubjectPublicKeyInfo');
  const [alg, key] = children(spki, expectTag(top, Tag.SEQUENCE, 'SubjectPublicKeyInfo'));
  const algParts = children(spki, expectTag(alg, Tag.SEQUENCE, 'AlgorithmIdentifier'));
  const keyBits = expectTag(key, Tag.BIT_STRING, 'subjectPublicKey');
  const algOid = decodeOid(spki, algParts[0]!);
  if (algOid === OID.ecPublicKey) {
    const p = algParts[1];
    const curve = p && p.tag === Tag.OID ? CURVES[decodeOid(spki, p)] : undefined;
    if (!curve) throw malformed('unsupported elliptic curve');
    return { type: curve[0], bits: curve[1] };
  }
  if (algOid === OID.rsaEncryption) {
    const bs = content(spki, keyBits).subarray(1);
    const rsa = readWhole(bs, 'RSAPublicKey');
    const n = children(bs, expectTag(rsa, Tag.SEQUENCE, 'RSAPublicKey'))[0];
    const mod = content(bs, expectTag(n, Tag.INTEGER, 'modulus'));
    let i = 0;
    while (i < mod.length && mod[i] === 0) i++;
    if (i === mod.length) throw malformed('invalid RSA modulus');
    return { type: 'rsa', bits: (mod.length - i) * 8 - Math.clz32(mod[i]!) + 24 };
  }
  if (algOid === OID.ed25519) return { type: 'ed25519', bits: 256 };
  throw malformed(`unsupported public key algorithm ${algOid}`);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const top = readWhole(spki, 'SubjectPublicKeyInfo');
  const key = children(spki, top)[1]!;
  return createHash('sha1').update(content(spki, key).subarray(1)).digest();
}

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
