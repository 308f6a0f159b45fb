// GET /crl/: the JSON list of the CRLs a layer serves, so that a layer below or
// a client finds the CRLs of its chain at the gateway it can reach, without a
// CRL Distribution Point it could not. One writer (the server), two readers
// (a forwarding layer's fetch and the edge client).
import { EstError } from '../errors.js';

/** What GET /crl/ says of one CRL: enough to pick the CRLs of a chain. */
export interface CrlIndexEntry {
  /** Served at /crl/NAME.crl. */
  name: string;
  /** The CRL issuer (RFC 4514) and its authorityKeyIdentifier (hex). */
  issuer: string;
  keyId: string;
  number: number;
  thisUpdate: string;
  nextUpdate: string;
}

export const CRL_NAME = /^[A-Za-z0-9_-]+$/;
/** More CRLs than any hierarchy has CAs: a longer list is not believed. */
export const MAX_INDEX_ENTRIES = 256;

export const encodeCrlIndex = (crls: CrlIndexEntry[]): string => `${JSON.stringify({ crls })}\n`;

/** One entry as a client needs it, or undefined when it lacks a usable name, issuer, key identifier or number. */
export function crlIndexEntry(e: unknown): CrlIndexEntry | undefined {
  const x = (e ?? {}) as Partial<Record<keyof CrlIndexEntry, unknown>>;
  if (typeof x.name !== 'string' || !CRL_NAME.test(x.name) || typeof x.issuer !== 'string' || typeof x.keyId !== 'string' || !/^[0-9a-f]*$/i.test(x.keyId) || !Number.isSafeInteger(x.number)) {
    return undefined;
  }
  return { name: x.name, issuer: x.issuer, keyId: x.keyId.toLowerCase(), number: x.number as number, thisUpdate: String(x.thisUpdate ?? ''), nextUpdate: String(x.nextUpdate ?? '') };
}

/** The raw entries of a GET /crl/ answer (at most MAX_INDEX_ENTRIES); not JSON, or no "crls" list: `badGateway`. */
export function parseCrlIndex(body: Buffer): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new EstError('badGateway', 'the CRL index (GET /crl/) is not JSON');
  }
  const list = (doc as { crls?: unknown } | null)?.crls;
  if (!Array.isArray(list)) throw new EstError('badGateway', 'the CRL index (GET /crl/) has no "crls" list');
  return list.slice(0, MAX_INDEX_ENTRIES);
}

/** The names an index lists, once each: all a forwarding layer needs (each CRL is verified against a CA it knows). */
export const crlIndexNames = (body: Buffer): string[] =>
  [...new Set(parseCrlIndex(body).map((e) => (e as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === 'string' && CRL_NAME.test(n)))];
