// X.509 v3 extensions shared by CSRs (extensionRequest) and certificates.
import { malformed } from '../errors.js';
import {
  Tag, type Tlv, TRUE, bitString, children, clip, content, decodeBoolean, decodeOid, decodeSmallInteger, expectTag, octetString,
  oid, readWhole, seq, smallInteger,
} from './der.js';
import { EXTENSION_NAME, OID } from './oids.js';

export interface Extension {
  oid: string;
  critical: boolean;
  /** Content of extnValue: the DER of the extension's own value. */
  value: Buffer;
}

export function parseExtensions(buf: Uint8Array, t: Tlv): Extension[] {
  expectTag(t, Tag.SEQUENCE, 'Extensions');
  const seen = new Set<string>();
  return children(buf, t).map((e) => {
    const parts = children(buf, expectTag(e, Tag.SEQUENCE, 'Extension'));
    const id = decodeOid(buf, parts[0]!);
    // RFC 5280 §4.2: at most one instance of an extension
    if (seen.has(id)) throw malformed(`duplicate extension ${EXTENSION_NAME[id] ?? clip(id)}`);
    seen.add(id);
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === Tag.BOOLEAN) critical = decodeBoolean(buf, parts[i++]!);
    const value = content(buf, expectTag(parts[i], Tag.OCTET_STRING, 'extnValue'));
    if (parts.length !== i + 1) throw malformed('invalid Extension: extra fields');
    return { oid: id, critical, value };
  });
}

export function extension(id: string, critical: boolean, valueDer: Uint8Array): Buffer {
  return critical ? seq(oid(id), TRUE, octetString(valueDer)) : seq(oid(id), octetString(valueDer));
}

export interface BasicConstraints {
  ca: boolean;
  pathLen?: number;
}

export function decodeBasicConstraints(der: Uint8Array): BasicConstraints {
  const t = readWhole(der, 'basicConstraints');
  const parts = children(der, expectTag(t, Tag.SEQUENCE, 'basicConstraints'));
  let i = 0;
  let ca = false;
  if (parts[i]?.tag === Tag.BOOLEAN) ca = decodeBoolean(der, parts[i++]!);
  const out: BasicConstraints = { ca };
  if (parts[i]) out.pathLen = decodeSmallInteger(der, parts[i++]!);
  if (i !== parts.length) throw malformed('invalid basicConstraints');
  return out;
}

export function encodeBasicConstraints(bc: BasicConstraints): Buffer {
  if (!bc.ca) return seq();
  return bc.pathLen === undefined ? seq(TRUE) : seq(TRUE, smallInteger(bc.pathLen));
}

export const KeyUsage = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageName = keyof typeof KeyUsage;

/** Named-bit BIT STRING, DER: trailing zero bits dropped (X.690 11.2.2). */
export function encodeKeyUsage(names: KeyUsageName[]): Buffer {
  const bits = names.map((n) => KeyUsage[n]);
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (top & 7));
}

export function decodeKeyUsage(der: Uint8Array): KeyUsageName[] {
  const t = readWhole(der, 'keyUsage');
  const c = content(der, expectTag(t, Tag.BIT_STRING, 'keyUsage'));
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw malformed('invalid keyUsage: bad unused-bits count');
  const out: KeyUsageName[] = [];
  for (const [name, bit] of Object.entries(KeyUsage) as Array<[KeyUsageName, number]>) {
    if (c.length > 1 + (bit >> 3) && c[1 + (bit >> 3)]! & (0x80 >> (bit & 7))) out.push(name);
  }
  return out;
}

export function decodeOidList(der: Uint8Array, what: string): string[] {
  const t = readWhole(der, what);
  return children(der, expectTag(t, Tag.SEQUENCE, what)).map((o) => decodeOid(der, o));
}
/** RFC 5280 §4.2.1.12: KeyPurposeId SIZE (1..MAX), and a purpose named twice is a second reading waiting to happen. */
export function decodeExtKeyUsage(der: Uint8Array): string[] {
  const oids = decodeOidList(der, 'extKeyUsage');
  if (oids.length === 0) throw malformed('invalid extKeyUsage: empty');
  if (new Set(oids).size !== oids.length) throw malformed('invalid extKeyUsage: a purpose is listed twice');
  return oids;
}
export const encodeOidList = (oids: string[]) => seq(...oids.map(oid));

export const encodeSubjectKeyIdentifier = (keyId: Uint8Array) => octetString(keyId);
export const encodeAuthorityKeyIdentifier = (keyId: Uint8Array) => seq(Buffer.concat([Buffer.from([0x80]), lengthByte(keyId.length), keyId]));
function lengthByte(n: number): Buffer {
  if (n >= 0x80) throw new Error('key identifier too long');
  return Buffer.from([n]);
}

export function decodeSubjectKeyIdentifier(der: Uint8Array): Buffer {
  const t = readWhole(der, 'subjectKeyIdentifier');
  return Buffer.from(content(der, expectTag(t, Tag.OCTET_STRING, 'subjectKeyIdentifier')));
}

export const EKU_NAMES: Record<string, string> = { serverAuth: OID.serverAuth, clientAuth: OID.clientAuth, cmcRA: OID.cmcRA };
