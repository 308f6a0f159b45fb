// A layer's subordinate CA, obtained from the parent layer over EST: a new key,
// a CSR for CA:TRUE with a path length, simpleenroll on a label whose policy
// grants CA certificates to this layer, then the parent's chain up to the root.
import { X509Certificate } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { EstError } from '../errors.js';
import { EstClient } from '../transport/est-client.js';
import type { CaConfig } from '../config/schema.js';
import { buildCsr } from '../est/csr-build.js';
import { buildName, parseNameString } from '../est/name.js';
import { issuedBy } from '../pki/issued-by.js';
import { type CaMaterial, REPLACED_SUFFIX, assembleCa, caExists, storeCa } from '../pki/ca.js';
import { type KeySpec, generateKey } from '../pki/keys.js';
import type { Logger } from '../util/log.js';
import { upstreamClientOptions } from './upstream-options.js';

/** The issuers of `leaf`, nearest first, up to the self-signed root, picked from `pool` by signature. */
export function issuerPath(leaf: Buffer, pool: Buffer[]): Buffer[] {
  const certs = pool.map((d) => new X509Certificate(d));
  const path: Buffer[] = [];
  let cur = new X509Certificate(leaf);
  while (cur.subject !== cur.issuer || !cur.verify(cur.publicKey)) {
    const next = certs.find((c) => !c.raw.equals(cur.raw) && issuedBy(cur, c));
    if (!next || path.length > 8) throw new EstError('badGateway', `the parent's /cacerts does not lead from "${cur.subject.replace(/\n/g, ', ')}" to a root`);
    path.push(next.raw);
    cur = next;
  }
  return path;
}

export async function requestSubordinateCa(name: string, dir: string, ca: CaConfig, logger?: Logger): Promise<CaMaterial> {
  if (!ca.request) throw new EstError('malformed', `CA "${name}" has no [request] table`);
  const key = await generateKey(ca.key as KeySpec);
  const csr = buildCsr({
    subject: buildName(parseNameString(ca.subject)),
    privateKey: key,
    basicConstraints: { ca: true, pathLen: ca.path_len ?? 0 },
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  });
  const client = new EstClient(await upstreamClientOptions(ca.request, logger ? { logger } : {}));
  try {
    const { certificate, extra } = await client.simpleenroll(csr);
    const issuers = issuerPath(certificate, [...extra, ...(await client.cacerts())]);
    const material = assembleCa(name, certificate, key, issuers);
    if (!material.fields.basicConstraints?.ca) throw new EstError('badGateway', 'the parent issued a certificate that is not a CA');
    await storeCa(dir, certificate, key, issuers);
    logger?.info({ ca: name, subject: material.cert.subject.replace(/\n/g, ', '), notAfter: material.cert.validTo }, 'sub-CA obtained from the parent layer');
    return material;
  } finally {
    client.close();
  }
}

/**
 * Obtains a new sub-CA into a fresh directory, then swaps it in: the old one
 * stays whole until the new one is complete, and is kept beside it as
 * `DIR.replaced-TIME` so certificates it issued still renew (setup.ts loads it
 * as a previous generation until it expires).
 */
export async function replaceSubordinateCa(name: string, dir: string, ca: CaConfig, logger?: Logger): Promise<CaMaterial> {
  const fresh = `${dir}.new-${process.pid}-${Date.now()}`;
  const material = await requestSubordinateCa(name, fresh, ca, logger);
  if (await caExists(dir)) await rename(dir, `${dir}${REPLACED_SUFFIX}${new Date().toISOString().replace(/[:.]/g, '')}`);
  await rename(fresh, dir);
  return material;
}
