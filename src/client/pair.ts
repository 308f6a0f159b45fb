// A certificate/key pair as read from disk, and whether it can be used now.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EstError } from '../errors.js';
import { fromPemAll } from '../est/base64.js';
import { type CertFields, parseCertificate } from '../est/certificate.js';
import { loadPrivateKey, spkiDer } from '../pki/keys.js';
import type { PemPair } from './store.js';

export interface LoadedPair extends PemPair {
  leaf: CertFields;
  key: KeyObject;
}

/** Parses a PEM pair; the certificate file's first certificate must carry the key. */
export function parsePair(pair: PemPair, where: string): LoadedPair {
  const [leafDer] = fromPemAll(pair.certPem, 'CERTIFICATE');
  if (!leafDer) throw new EstError('malformed', `${where}: no PEM certificate`);
  let key: KeyObject;
  try {
    key = loadPrivateKey(pair.keyPem);
  } catch (e) {
    throw new EstError('malformed', `${where}: unreadable private key`, { cause: e });
  }
  const leaf = parseCertificate(leafDer);
  if (!leaf.spki.equals(spkiDer(key))) throw new EstError('malformed', `${where}: the private key does not match the certificate`);
  return { ...pair, leaf, key };
}

export const isValidAt = (p: LoadedPair, now: number): boolean => p.leaf.notBefore.getTime() <= now && now < p.leaf.notAfter.getTime();

export async function readPairFiles(certFile: string, keyFile: string): Promise<LoadedPair> {
  const read = (f: string) =>
    readFile(f, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new EstError('malformed', `cannot read ${f}: ${e.code ?? e.message}`, { cause: e });
    });
  return parsePair({ certPem: await read(certFile), keyPem: await read(keyFile) }, certFile);
}
