// TLS client certificates for tests: foreign CAs (bootstrap, manufacturer, rogue)
// and leaves signed directly by any CaMaterial, with a chosen validity window.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toPem } from '../../src/est/base64.js';
import { buildGeneralNames, buildName, type GeneralName } from '../../src/est/name.js';
import { OID } from '../../src/est/oids.js';
import { describeSpki } from '../../src/est/spki.js';
import { type CaMaterial, createRootCa } from '../../src/pki/ca.js';
import { Signer } from '../../src/pki/issuance.js';
import { type KeySpec, generateKey, privateKeyPem, spkiDer } from '../../src/pki/keys.js';
import type { KeyObject } from 'node:crypto';

export interface ClientCert {
  certPem: string;
  keyPem: string;
  key: KeyObject;
  der: Buffer;
  serialHex: string;
}

export interface LeafOptions {
  days?: number;
  /** Issue as of this moment (a past `now` and few days make an expired certificate). */
  now?: Date;
  san?: GeneralName[];
  eku?: string[];
  keySpec?: KeySpec;
  key?: KeyObject;
}

/** A leaf signed by `ca` with the same profile the gateway issues (clientAuth by default). */
export async function leafCert(ca: CaMaterial, cn: string, o: LeafOptions = {}): Promise<ClientCert> {
  const key = o.key ?? (await generateKey(o.keySpec ?? 'p256'));
  const spki = spkiDer(key);
  const issued = new Signer(ca).issue(
    {
      subjectDer: buildName([['CN', cn]]),
      spki,
      key: describeSpki(spki),
      validityDays: o.days ?? 30,
      extKeyUsage: o.eku ?? [OID.clientAuth],
      ...(o.san ? { subjectAltNameDer: buildGeneralNames(o.san) } : {}),
    },
    o.now,
  );
  return { certPem: toPem('CERTIFICATE', issued.der), keyPem: privateKeyPem(key), key, der: issued.der, serialHex: issued.serialHex };
}

/** A self-signed CA outside the gateway, and a PEM file of its certificate (for client_trust). */
export async function foreignCa(dir: string, name: string): Promise<{ ca: CaMaterial; pemFile: string; pem: string }> {
  const ca = await createRootCa(name, join(dir, name), { subject: [['O', 'Test'], ['CN', `${name} CA`]], days: 365 });
  const pem = toPem('CERTIFICATE', ca.certDer);
  const pemFile = join(dir, `${name}-ca.pem`);
  await writeFile(pemFile, pem);
  return { ca, pemFile, pem };
}

/**
 * An attacker's extra chain certificate: subject, key and SKI of `realIssuer`
 * (so it looks like the issuer of the attacker's leaf), issuer name and AKI of
 * `wanted` (so a name-based chain walk continues into `wanted`), signed by a
 * throwaway key. Nothing about it verifies; only a careless chain walk follows it.
 */
export async function forgedLink(realIssuer: CaMaterial, wanted: CaMaterial): Promise<string> {
  const impostor = { ...wanted, key: await generateKey('p256') };
  const issued = new Signer(impostor).issue({
    subjectDer: realIssuer.fields.subjectDer,
    spki: realIssuer.fields.spki,
    key: describeSpki(realIssuer.fields.spki),
    validityDays: 30,
    extKeyUsage: [],
    ca: {},
  });
  return toPem('CERTIFICATE', issued.der);
}
