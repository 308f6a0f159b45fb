// Trust anchors (RFC 7030 §4.1.1): an explicit anchor file, or a bootstrap in
// which the first /cacerts is fetched without verifying the server and accepted
// only if a root in it has the SHA-256 fingerprint given out of band (--pin);
// that root is then stored as the explicit anchor and used from then on.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EstError } from '../errors.js';
import { fromPemAll, toPem } from '../est/base64.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Logger } from '../util/log.js';
import { buildChain, isSelfSigned, sha256Hex } from './chain.js';
import { EstClient } from '../transport/est-client.js';

/** Accepts hex (any case, with or without `:` or spaces), optionally prefixed `sha256:`, or base64. */
export function parsePin(pin: string): string {
  const p = pin.trim().replace(/^sha-?256[:/]/i, '');
  const hex = p.replace(/[:\s]/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return hex.toLowerCase();
  const b = Buffer.from(p, 'base64');
  if (b.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(p)) return b.toString('hex');
  throw new EstError('malformed', `invalid pin "${pin}": expected the root certificate's SHA-256 fingerprint (64 hex digits)`);
}

export async function loadTrustAnchors(file: string): Promise<Buffer[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new EstError('malformed', `cannot read trust anchor file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  const certs = fromPemAll(text, 'CERTIFICATE');
  if (certs.length === 0) throw new EstError('malformed', `trust anchor file ${file} holds no PEM certificate`);
  for (const c of certs) new X509Certificate(c); // unreadable certificates fail here, with the file named by the caller's context
  return certs;
}

export interface BootstrapOptions {
  url: string;
  label?: string;
  pin: string;
  /** Where the accepted root is stored, as PEM. */
  out: string;
  timeoutMs?: number;
  logger?: Logger;
}

/** RFC 7030 §4.1.1 bootstrap; returns the accepted root and the whole /cacerts answer. */
export async function bootstrapTrust(o: BootstrapOptions): Promise<{ root: Buffer; cacerts: Buffer[] }> {
  const pin = parsePin(o.pin);
  const client = new EstClient({ url: o.url, ...(o.label ? { label: o.label } : {}), insecureSkipVerify: true, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
  let certs: Buffer[];
  let serverChain: Buffer[];
  try {
    ({ certs, serverChain } = await client.cacertsWithServerChain());
  } finally {
    client.close();
  }
  const root = certs.find((d) => sha256Hex(d) === pin);
  if (!root) {
    const seen = certs.map((d) => new X509Certificate(d)).filter(isSelfSigned).map((x) => sha256Hex(x.raw));
    throw new EstError('forbidden', `cacerts: no root certificate matches the pin ${pin} (roots offered: ${seen.join(', ') || 'none'})`);
  }
  if (!isSelfSigned(new X509Certificate(root))) throw new EstError('forbidden', 'cacerts: the pinned certificate is not a self-signed root');
  // The unverified connection is acceptable only if the server was, in fact, one the pinned root vouches for.
  const leaf = serverChain[0];
  if (!leaf || !buildChain(leaf, [...serverChain.slice(1), ...certs], [root], Date.now())) {
    throw new EstError('forbidden', 'cacerts: the server\'s TLS certificate does not chain to the pinned root; not trusting this server');
  }
  await writeFileAtomic(o.out, toPem('CERTIFICATE', root));
  o.logger?.info({ file: o.out, sha256: pin }, 'trust anchor bootstrapped by pin');
  return { root, cacerts: certs };
}

/**
 * The explicit anchors from `files`. A single missing file with a pin is
 * bootstrapped; no files at all means "system roots" and returns [].
 */
export async function ensureTrust(o: { files: string[]; pin?: string; url: string; label?: string; logger?: Logger }): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const file of o.files) {
    try {
      await readFile(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new EstError('malformed', `cannot read trust anchor file ${file}: ${code ?? (e as Error).message}`, { cause: e });
      if (!o.pin || o.files.length !== 1) throw new EstError('malformed', `trust anchor file ${file} is missing and no pin is configured to bootstrap it`);
      const { root } = await bootstrapTrust({ url: o.url, ...(o.label ? { label: o.label } : {}), pin: o.pin, out: file, ...(o.logger ? { logger: o.logger } : {}) });
      return [root];
    }
    out.push(...(await loadTrustAnchors(file)));
  }
  return out;
}
