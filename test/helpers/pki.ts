// CSRs and keys for tests, built with the project's codec.
import type { KeyObject } from 'node:crypto';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { type CsrOptions, buildCsr } from '../../src/est/csr-build.js';
import { buildName } from '../../src/est/name.js';
import { type KeySpec, generateKey, privateKeyPem } from '../../src/pki/keys.js';

export interface TestCsr {
  key: KeyObject;
  keyPem: string;
  der: Buffer;
  b64: string;
}

export async function makeCsr(
  cn: string | Array<[string, string]>,
  o: Partial<Omit<CsrOptions, 'subject' | 'privateKey'>> & { keySpec?: KeySpec; key?: KeyObject } = {},
): Promise<TestCsr> {
  const key = o.key ?? (await generateKey(o.keySpec ?? 'p256'));
  const der = buildCsr({ ...o, subject: buildName(typeof cn === 'string' ? [['CN', cn]] : cn), privateKey: key });
  return { key, keyPem: privateKeyPem(key), der, b64: encodeEstBase64(der) };
}
