// Key generation and PEM storage, all on node:crypto.
import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const genKeyPair = promisify(generateKeyPair);

/** Key types est-gateway generates: `p256`, `p384`, `rsa2048`, `rsa3072`, `rsa4096`, `ed25519`. */
export type KeySpec = 'p256' | 'p384' | 'rsa2048' | 'rsa3072' | 'rsa4096' | 'ed25519';
export const KEY_SPECS: readonly KeySpec[] = ['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096', 'ed25519'];

/** Runs on libuv's thread pool, so an RSA key does not block the event loop. */
export async function generateKey(spec: KeySpec): Promise<KeyObject> {
  switch (spec) {
    case 'p256':
      return (await genKeyPair('ec', { namedCurve: 'P-256' })).privateKey;
    case 'p384':
      return (await genKeyPair('ec', { namedCurve: 'P-384' })).privateKey;
    case 'ed25519':
      return (await genKeyPair('ed25519')).privateKey;
    default: {
      const bits = Number(spec.slice(3));
      return (await genKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 })).privateKey;
    }
  }
}

export const privateKeyPem = (k: KeyObject): string => k.export({ format: 'pem', type: 'pkcs8' }) as string;
export const privateKeyDer = (k: KeyObject): Buffer => k.export({ format: 'der', type: 'pkcs8' });
export const spkiDer = (k: KeyObject): Buffer => createPublicKey(k).export({ format: 'der', type: 'spki' });
export const loadPrivateKey = (pem: string | Buffer): KeyObject => createPrivateKey(pem);
