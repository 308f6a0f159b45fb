// CSRs the project's builder will not make: arbitrary raw extensions (otherName
// or directoryName SANs), and keys of any RSA size.
import { type KeyObject, createPublicKey, generateKeyPair, sign } from 'node:crypto';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { bitString, ctx, oid, seq, setOf, smallInteger } from '../../src/est/der.js';
import { extension } from '../../src/est/extensions.js';
import { OID } from '../../src/est/oids.js';
import { signatureAlgorithmFor } from '../../src/est/signature.js';

/** RSA of any size (the project's KeySpec stops at sensible ones). */
export const rsaKey = (bits: number): Promise<KeyObject> =>
  new Promise((resolve, reject) => generateKeyPair('rsa', { modulusLength: bits }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))));

export interface RawExtension {
  oid: string;
  critical?: boolean;
  /** DER of the extension's value (what goes inside extnValue). */
  value: Buffer;
}

/** A PKCS#10 request with exactly these extensions in its extensionRequest, signed by `key`. */
export function csrWithExtensions(key: KeyObject, subjectDer: Buffer, exts: RawExtension[]): { der: Buffer; b64: string } {
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const attrs = exts.length ? [seq(oid(OID.extensionRequest), setOf(seq(...exts.map((e) => extension(e.oid, !!e.critical, e.value)))))] : [];
  const info = seq(smallInteger(0), subjectDer, spki, ctx(0, true, ...attrs));
  const alg = signatureAlgorithmFor(key);
  const der = seq(info, alg.der, bitString(sign(alg.digest, info, key)));
  return { der, b64: encodeEstBase64(der) };
}
