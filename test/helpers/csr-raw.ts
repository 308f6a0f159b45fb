// CSRs the project's builder will not make: arbitrary raw extensions (otherName
// or directoryName SANs), attributes in any number and order, hostile names and
// keys, and keys of any RSA size.
import { type KeyObject, createPublicKey, generateKeyPair, sign } from 'node:crypto';
import { encodeEstBase64 } from '../../src/est/base64.js';
import { Tag, bitString, ctx, oid, seq, setOf, smallInteger, tlv } from '../../src/est/der.js';
import { extension } from '../../src/est/extensions.js';
import { OID } from '../../src/est/oids.js';
import { signatureAlgorithmFor } from '../../src/est/signature.js';

/** RSA of any size (the project's KeySpec stops at sensible ones). */
export const rsaKey = (bits: number): Promise<KeyObject> =>
  new Promise((resolve, reject) => generateKeyPair('rsa', { modulusLength: bits }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))));

export interface RawExtension {
  oid: string;
  critical?: boolean;
  /** DER of the extension's value (what goes inside extnValue). */
  value: Buffer;
}

export interface RawCsrParts {
  /** Signs the request, and gives the SPKI unless `spki` is set. */
  key: KeyObject;
  /** Name DER. */
  subject: Buffer;
  /** SubjectPublicKeyInfo DER to put in the request instead of the key's. */
  spki?: Buffer;
  /** Attribute DERs, kept in this order (a hostile request need not sort them). */
  attributes?: Buffer[];
  /** Signature bytes to send instead of a real signature. */
  signature?: Buffer;
}

/** A PKCS#10 request assembled from raw parts with the project's DER writer. */
export function rawCsr(p: RawCsrParts): { der: Buffer; b64: string } {
  const spki = p.spki ?? createPublicKey(p.key).export({ format: 'der', type: 'spki' });
  const info = seq(smallInteger(0), p.subject, spki, ctx(0, true, ...(p.attributes ?? [])));
  const alg = signatureAlgorithmFor(p.key);
  const der = seq(info, alg.der, bitString(p.signature ?? sign(alg.digest, info, p.key)));
  return { der, b64: encodeEstBase64(der) };
}

/** Attribute ::= SEQUENCE { type, SET OF value }; `type` is a dotted OID or a whole OID TLV. */
export const attribute = (type: string | Buffer, ...values: Buffer[]): Buffer => seq(typeof type === 'string' ? oid(type) : type, setOf(...values));

/** The extensionRequest attribute (PKCS#9) carrying these extensions. */
export const extensionRequest = (...exts: RawExtension[]): Buffer =>
  attribute(OID.extensionRequest, seq(...exts.map((e) => extension(e.oid, !!e.critical, e.value))));

/** A Name from RDNs of [type, value TLV] pairs; a type is a dotted OID or a whole OID TLV. */
export const rawName = (...rdns: Array<Array<[string | Buffer, Buffer]>>): Buffer =>
  seq(...rdns.map((rdn) => setOf(...rdn.map(([type, value]) => seq(typeof type === 'string' ? oid(type) : type, value)))));

/** An OBJECT IDENTIFIER TLV from raw content octets (for encodings oid() will not write). */
export const rawOid = (...octets: number[]): Buffer => tlv(Tag.OID, Buffer.from(octets));

/** A PKCS#10 request with exactly these extensions in its extensionRequest, signed by `key`. */
export function csrWithExtensions(key: KeyObject, subjectDer: Buffer, exts: RawExtension[]): { der: Buffer; b64: string } {
  return rawCsr({ key, subject: subjectDer, attributes: exts.length ? [extensionRequest(...exts)] : [] });
}
