// Signature algorithms: AlgorithmIdentifier <-> node:crypto digest names.
import { verify, type KeyObject } from 'node:crypto';
import { malformed } from '../errors.js';
import { NULL, clip, oid, seq } from './der.js';
import { OID } from './oids.js';

const DIGEST_BY_SIG: Record<string, string | null> = {
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.ecdsaWithSHA512]: 'sha512',
  [OID.ed25519]: null,
};

export function digestFor(sigAlgOid: string): string | null {
  const d = DIGEST_BY_SIG[sigAlgOid];
  if (d === undefined) throw malformed(`unsupported signature algorithm ${clip(sigAlgOid)}`);
  return d;
}

/** Verifies with native crypto; ECDSA signatures are DER as X.509 carries them. */
export function verifySignature(sigAlgOid: string, data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  const digest = digestFor(sigAlgOid); // unsupported algorithms are an error of their own, not a bad signature
  try {
    return verify(digest, data, key, signature);
  } catch {
    return false;
  }
}

/** The AlgorithmIdentifier a key of this kind signs with (RFC 5758, RFC 4055). */
export function signatureAlgorithmFor(key: KeyObject): { oid: string; digest: string | null; der: Buffer } {
  const t = key.asymmetricKeyType;
  if (t === 'rsa') return { oid: OID.sha256WithRSAEncryption, digest: 'sha256', der: seq(oid(OID.sha256WithRSAEncryption), NULL) };
  if (t === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const [id, digest] =
      curve === 'secp384r1' ? [OID.ecdsaWithSHA384, 'sha384'] : curve === 'secp521r1' ? [OID.ecdsaWithSHA512, 'sha512'] : [OID.ecdsaWithSHA256, 'sha256'];
    return { oid: id, digest, der: seq(oid(id)) };
  }
  if (t === 'ed25519') return { oid: OID.ed25519, digest: null, der: seq(oid(OID.ed25519)) };
  throw new Error(`cannot sign with a ${t} key`);
}
