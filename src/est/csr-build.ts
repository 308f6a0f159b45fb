// PKCS#10 building, for the edge client, the RA's sub-CA request and tests.
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { bitString, ctx, oid, printable, seq, setOf, smallInteger, utf8 } from './der.js';
import { type BasicConstraints, type KeyUsageName, encodeBasicConstraints, encodeKeyUsage, encodeOidList, extension } from './extensions.js';
import { type GeneralName, buildGeneralNames } from './name.js';
import { OID } from './oids.js';
import { signatureAlgorithmFor } from './signature.js';

export interface CsrOptions {
  /** DER Name (see buildName). */
  subject: Buffer;
  privateKey: KeyObject;
  subjectAltNames?: GeneralName[];
  /** RFC 7030 §3.5: base64 of tls-unique, or any password the server expects. */
  challengePassword?: string;
  basicConstraints?: BasicConstraints;
  keyUsage?: KeyUsageName[];
  extKeyUsage?: string[];
}

export function buildCsr(o: CsrOptions): Buffer {
  const spki = createPublicKey(o.privateKey).export({ format: 'der', type: 'spki' });
  const exts: Buffer[] = [];
  if (o.basicConstraints) exts.push(extension(OID.basicConstraints, true, encodeBasicConstraints(o.basicConstraints)));
  if (o.keyUsage?.length) exts.push(extension(OID.keyUsage, true, encodeKeyUsage(o.keyUsage)));
  if (o.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, encodeOidList(o.extKeyUsage)));
  if (o.subjectAltNames?.length) exts.push(extension(OID.subjectAltName, false, buildGeneralNames(o.subjectAltNames)));
  const attrs: Buffer[] = [];
  if (o.challengePassword !== undefined) {
    const v = /^[A-Za-z0-9 '()+,./:=?-]*$/.test(o.challengePassword) ? printable(o.challengePassword) : utf8(o.challengePassword);
    attrs.push(seq(oid(OID.challengePassword), setOf(v)));
  }
  if (exts.length) attrs.push(seq(oid(OID.extensionRequest), setOf(seq(...exts))));
  const info = seq(smallInteger(0), o.subject, spki, ctx(0, true, ...[...attrs].sort(Buffer.compare)));
  const alg = signatureAlgorithmFor(o.privateKey);
  return seq(info, alg.der, bitString(sign(alg.digest, info, o.privateKey)));
}
