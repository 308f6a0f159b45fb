// Path building from a certificate to an explicit trust anchor, on node:crypto's
// X509Certificate (checkIssued for names and key identifiers, verify for the
// signature). Small on purpose: EST chains are a leaf, a few CAs and a root.
import { X509Certificate, createHash } from 'node:crypto';

const MAX_DEPTH = 8;

export const sha256Hex = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');

export const isSelfSigned = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);

const validAt = (c: X509Certificate, now: number) => Date.parse(c.validFrom) <= now && now < Date.parse(c.validTo);

/**
 * The path leaf → … → anchor (anchor included), using `pool` for
 * intermediates, or undefined when there is none. Every issuer on the way must
 * be a CA, and with `now` every certificate must be within its validity.
 */
export function buildChain(leaf: Buffer, pool: Buffer[], anchors: Buffer[], now?: number): Buffer[] | undefined {
  const anchorCerts = anchors.map((d) => ({ der: d, x: new X509Certificate(d) }));
  const poolCerts = pool.map((d) => ({ der: d, x: new X509Certificate(d) }));
  const path: Buffer[] = [leaf];
  let cur = new X509Certificate(leaf);
  if (now !== undefined && !validAt(cur, now)) return undefined;
  const issues = (issuer: X509Certificate) =>
    issuer.ca && (now === undefined || validAt(issuer, now)) && cur.checkIssued(issuer) && cur.verify(issuer.publicKey);
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (anchorCerts.some((a) => a.der.equals(path[path.length - 1]!))) return path;
    const anchor = anchorCerts.find((a) => issues(a.x));
    if (anchor) return [...path, anchor.der];
    const next = poolCerts.find((p) => !path.some((d) => d.equals(p.der)) && issues(p.x));
    if (!next) return undefined;
    path.push(next.der);
    cur = next.x;
  }
  return undefined;
}
