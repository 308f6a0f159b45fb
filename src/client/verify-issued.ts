// What a new certificate must prove before it may replace a working one: it
// chains to our trust anchor, carries our new key and the subject we asked for,
// is valid now, and is a CA when we asked for one (IoT Edge CA).
import type { KeyObject } from 'node:crypto';
import { EstError } from '../errors.js';
import { parseCertificate } from '../est/certificate.js';
import { formatName, namesEqual, parseNameDer } from '../est/name.js';
import { spkiDer } from '../pki/keys.js';
import { buildChain } from './chain.js';

/** A server whose clock runs a little ahead still issues usable certificates. */
export const CLOCK_SKEW_MS = 5 * 60_000;

export interface IssuedCheck {
  certificate: Buffer;
  key: KeyObject;
  /** The Name requested in the CSR (DER). */
  subjectDer: Buffer;
  anchors: Buffer[];
  /** Intermediates from the enrollment answer and /cacerts. */
  intermediates: Buffer[];
  now: number;
  requireCa?: boolean;
}

export interface VerifiedIssued {
  /** Leaf first, up to and including the anchor. */
  chain: Buffer[];
  notBefore: Date;
  notAfter: Date;
  subject: string;
  serialHex: string;
}

const reject = (msg: string) => new EstError('badGateway', `issued certificate rejected: ${msg}`);

export function verifyIssued(c: IssuedCheck): VerifiedIssued {
  const f = parseCertificate(c.certificate);
  if (!f.spki.equals(spkiDer(c.key))) throw reject('it does not carry the new public key');
  const wanted = parseNameDer(c.subjectDer);
  if (!namesEqual(wanted, f.subject)) throw reject(`subject is "${formatName(f.subject)}", requested "${formatName(wanted)}"`);
  if (f.notAfter.getTime() <= c.now) throw reject(`it expired on ${f.notAfter.toISOString()}`);
  if (f.notBefore.getTime() > c.now + CLOCK_SKEW_MS) throw reject(`it is not valid before ${f.notBefore.toISOString()}`);
  if (c.requireCa && !f.basicConstraints?.ca) throw reject('a CA certificate was requested, but basicConstraints CA:TRUE is missing');
  // validity of the leaf was checked above with skew; the path check covers signatures and the CAs' validity
  const chain = buildChain(c.certificate, c.intermediates, c.anchors);
  if (!chain) throw reject('it does not chain to the trust anchor');
  const caExpired = chain.slice(1).map(parseCertificate).find((ca) => ca.notAfter.getTime() <= c.now);
  if (caExpired) throw reject(`its issuer "${formatName(caExpired.subject)}" expired on ${caExpired.notAfter.toISOString()}`);
  return { chain, notBefore: f.notBefore, notAfter: f.notAfter, subject: formatName(f.subject), serialHex: f.serial.toString('hex') };
}
