// Differential fuzzing of the PKCS#10 codec against OpenSSL: generate varied,
// valid requests, mutate their DER (tree edits re-signed, so the mutation
// reaches past the signature; raw bit flips, length and truncation edits), and
// read each with parseCsr + verifyCsr and with `openssl req`. One accepting what
// the other refuses, or both reading another subject, key, extension list, SAN,
// basicConstraints, keyUsage or EKU, is a finding, except where we are stricter
// on purpose (STRICTER below). Used by test/est/fuzz-differential.test.ts and
// scripts/fuzz-csr.ts.
import { type KeyObject, createPublicKey, generateKeyPair, sign } from 'node:crypto';
import { EstError } from '../../src/errors.js';
import { fromPemAll } from '../../src/est/base64.js';
import { type Csr, parseCsr, verifyCsr } from '../../src/est/csr.js';
import { TRUE, Tag, type Tlv, bitString, children, ctx, ia5, oid, octetString, printable, readTlv, seq, setOf, smallInteger, tlv, utf8 } from '../../src/est/der.js';
import { KeyUsage, encodeBasicConstraints, encodeKeyUsage, type KeyUsageName } from '../../src/est/extensions.js';
import { OID } from '../../src/est/oids.js';
import { signatureAlgorithmFor } from '../../src/est/signature.js';
import { run } from './cli.js';

// ---- a seeded PRNG (mulberry32): a case is its seed ----

export interface Rng {
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(a: readonly T[]): T;
  bytes(n: number): Buffer;
}

export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p) => next() < p,
    pick: (a) => a[int(a.length)]!,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/** The seed of case `index` of a run seeded `seed`. */
export const caseSeed = (seed: number, index: number): number => (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;

// ---- keys (generated once per run: a failing case is reported with its DER) ----

export type FuzzKeys = KeyObject[];
const keyOf = (type: 'ec' | 'rsa' | 'ed25519', o: object) =>
  new Promise<KeyObject>((resolve, reject) => generateKeyPair(type as 'ec', o as never, (err, _pub, priv) => (err ? reject(err) : resolve(priv as unknown as KeyObject))));
export const fuzzKeys = async (): Promise<FuzzKeys> =>
  Promise.all([
    keyOf('ec', { namedCurve: 'P-256' }),
    keyOf('ec', { namedCurve: 'P-384' }),
    keyOf('ec', { namedCurve: 'P-521' }),
    keyOf('rsa', { modulusLength: 2048 }),
    keyOf('ed25519', {}),
  ]);

// ---- generating valid requests ----

const PRIVATE = '1.3.6.1.4.1.99999';
const word = (r: Rng, alphabet: string, min: number, max: number) =>
  Array.from({ length: min + r.int(max - min + 1) }, () => alphabet[r.int(alphabet.length)]).join('');
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const label = (r: Rng) => r.pick([word(r, LOWER, 1, 1), `${word(r, LOWER, 1, 1)}${word(r, `${LOWER}0123456789-`, 0, 10)}${word(r, LOWER, 1, 1)}`, `xn--${word(r, LOWER, 3, 8)}`]);
const host = (r: Rng) => Array.from({ length: 1 + r.int(4) }, () => label(r)).join('.');
const mailbox = (r: Rng) => `${word(r, `${LOWER}0123456789`, 1, 8)}${r.chance(0.3) ? `.${word(r, LOWER, 1, 5)}` : ''}${r.chance(0.2) ? '+tag' : ''}@${host(r)}`;
const text = (r: Rng) => r.pick([word(r, `${LOWER} -.`, 1, 20).trim() || 'x', 'Line 7', 'Müller GmbH', 'plant-north', 'Ünïcödé ✓']);

type AttrGen = [string, (r: Rng) => Buffer];
const ATTRS: AttrGen[] = [
  [OID.commonName, (r) => (r.chance(0.5) ? utf8(text(r)) : printable(word(r, `${LOWER}0123456789 -.`, 1, 30).trim() || 'cn'))],
  [OID.organizationName, (r) => utf8(text(r))],
  [OID.organizationalUnitName, (r) => printable(word(r, `${LOWER} `, 1, 12).trim() || 'ou')],
  [OID.countryName, (r) => printable(word(r, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 2, 2))],
  [OID.localityName, (r) => utf8(text(r))],
  [OID.stateOrProvinceName, (r) => utf8(text(r))],
  [OID.serialNumber, (r) => printable(word(r, '0123456789', 1, 16))],
  [OID.domainComponent, (r) => ia5(label(r))],
  [OID.emailAddress, (r) => ia5(mailbox(r))],
  [OID.userId, (r) => utf8(word(r, LOWER, 1, 8))],
  ['2.5.4.12', (r) => utf8(text(r))],
  [`${PRIVATE}.1`, (r) => utf8(text(r))],
];

function genName(r: Rng, maxRdns: number): Buffer {
  const rdns: Buffer[] = [];
  for (let i = r.int(maxRdns + 1); i > 0; i--) {
    const gens = [...ATTRS];
    const attrs: Buffer[] = [];
    for (let j = r.chance(0.25) ? 2 + r.int(2) : 1; j > 0; j--) {
      const [type, value] = gens.splice(r.int(gens.length), 1)[0]!; // distinct types: CN=a+CN=a is refused
      attrs.push(seq(oid(type), value(r)));
    }
    rdns.push(setOf(...attrs));
  }
  return seq(...rdns);
}

const ip6 = (r: Rng) => Buffer.concat([Buffer.from([0x20, 0x01, 0x0d, 0xb8]), r.chance(0.5) ? Buffer.alloc(10) : r.bytes(10), r.bytes(2)]);
function genSan(r: Rng): Buffer {
  const names: Buffer[] = [];
  for (let i = 1 + r.int(5); i > 0; i--) {
    switch (r.int(9)) {
      case 0: case 1: names.push(ctx(2, false, Buffer.from(r.chance(0.1) ? `*.${host(r)}` : host(r)))); break;
      case 2: names.push(ctx(7, false, r.chance(0.5) ? Buffer.from([10, r.int(256), r.int(256), 1 + r.int(254)]) : ip6(r))); break;
      case 3: names.push(ctx(1, false, Buffer.from(mailbox(r)))); break;
      case 4: names.push(ctx(6, false, Buffer.from(r.pick([`https://${host(r)}/${word(r, LOWER, 0, 6)}`, `spiffe://${host(r)}/ns/${word(r, LOWER, 1, 6)}`, `urn:uuid:${r.bytes(16).toString('hex')}`])))); break;
      case 5: names.push(tlv(0x88, oid(`${PRIVATE}.${r.int(100)}`).subarray(2))); break;
      case 6: names.push(ctx(4, true, genName(r, 2))); break;
      case 7: names.push(ctx(0, true, oid(`${PRIVATE}.20`), ctx(0, true, utf8(word(r, LOWER, 1, 8))))); break;
      default: names.push(ctx(2, false, Buffer.from(host(r))));
    }
  }
  return seq(...names);
}

const PURPOSES = [OID.clientAuth, OID.serverAuth, OID.cmcRA, '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4', `${PRIVATE}.9`];
function genExtensions(r: Rng): Buffer[] {
  const exts: Buffer[] = [];
  const ext = (id: string, value: Buffer) => exts.push(r.chance(0.3) ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value)));
  if (r.chance(0.7)) ext(OID.subjectAltName, genSan(r));
  if (r.chance(0.3)) ext(OID.basicConstraints, encodeBasicConstraints(r.chance(0.5) ? { ca: true, ...(r.chance(0.5) ? { pathLen: r.int(4) } : {}) } : { ca: false }));
  if (r.chance(0.3)) {
    const names = Object.keys(KeyUsage) as KeyUsageName[];
    ext(OID.keyUsage, encodeKeyUsage(names.filter(() => r.chance(0.4)).concat(r.pick(names)).filter((n, i, a) => a.indexOf(n) === i)));
  }
  if (r.chance(0.3)) ext(OID.extKeyUsage, seq(...PURPOSES.filter(() => r.chance(0.4)).concat(OID.clientAuth).filter((n, i, a) => a.indexOf(n) === i).map((p) => oid(p))));
  if (r.chance(0.2)) ext(`${PRIVATE}.7`, utf8(text(r)));
  if (r.chance(0.2)) ext(OID.subjectKeyIdentifier, octetString(r.bytes(20)));
  for (let i = exts.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [exts[i], exts[j]] = [exts[j]!, exts[i]!];
  }
  return exts;
}

/** A valid CertificationRequestInfo and the key that signs it. */
export function genInfo(r: Rng, keys: FuzzKeys): { info: Buffer; key: KeyObject } {
  const key = r.pick(keys);
  const attrs: Buffer[] = [];
  if (r.chance(0.3)) attrs.push(seq(oid(OID.challengePassword), setOf(printable(r.bytes(12).toString('base64')))));
  const exts = genExtensions(r);
  if (exts.length) attrs.push(seq(oid(OID.extensionRequest), setOf(seq(...exts))));
  if (r.chance(0.15)) attrs.push(seq(oid(`${PRIVATE}.3`), setOf(utf8(text(r)))));
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { info: seq(smallInteger(0), genName(r, 4), spki, ctx(0, true, ...attrs)), key };
}

// ---- mutating DER as a tree ----

interface Node {
  tag: number;
  /** Constructed, or a primitive OCTET/BIT STRING that holds DER (`lead`: a BIT STRING's unused-bits octet). */
  kids?: Node[];
  lead?: Buffer;
  bytes?: Buffer;
}

function toTree(buf: Uint8Array, t: Tlv): Node {
  if (t.tag & 0x20) return { tag: t.tag, kids: children(buf, t).map((c) => toTree(buf, c)) };
  const body = Buffer.from(buf.subarray(t.contentStart, t.end));
  const inner = t.tag === Tag.BIT_STRING ? body.subarray(1) : body;
  if ((t.tag === Tag.OCTET_STRING || t.tag === Tag.BIT_STRING) && inner[0] === Tag.SEQUENCE) {
    try {
      const one = readTlv(inner, 0);
      if (one.end === inner.length) return { tag: t.tag, lead: t.tag === Tag.BIT_STRING ? body.subarray(0, 1) : Buffer.alloc(0), kids: [toTree(inner, one)] };
    } catch {
      // not DER inside: a plain string
    }
  }
  return { tag: t.tag, bytes: body };
}

function encode(n: Node): Buffer {
  if (n.bytes) return tlv(n.tag, n.bytes);
  return tlv(n.tag, ...(n.lead ? [n.lead] : []), ...n.kids!.map(encode));
}

const clone = (n: Node): Node => ({ ...n, ...(n.kids ? { kids: n.kids.map(clone) } : {}) });

function walk(n: Node, parent: Node | undefined, out: Array<{ node: Node; parent: Node | undefined }>) {
  out.push({ node: n, parent });
  for (const k of n.kids ?? []) walk(k, n, out);
  return out;
}

const STRING_TAGS = [Tag.UTF8String, Tag.PrintableString, Tag.IA5String, Tag.TeletexString, Tag.BMPString, Tag.UniversalString, 0x81, 0x82, 0x86];
const RETAGS = [...STRING_TAGS, Tag.OCTET_STRING, Tag.BIT_STRING, Tag.INTEGER, Tag.OID, Tag.NULL, Tag.BOOLEAN, Tag.SEQUENCE, Tag.SET, 0x80, 0x87, 0x88, 0xa0, 0xa3, 0xa4, 0xa5];
const INSERTS = [[0x00], [0x07], [0x20], [0x2a], [0x40], [0x2e], [0x2d], [0x5f], [0x2f], [0x2c], [0x7f], [0xc3, 0xa9], [0xff], [0xc2, 0x85], [0x80]];
const OIDS = [OID.commonName, OID.organizationName, OID.countryName, OID.emailAddress, OID.domainComponent, OID.subjectAltName, OID.extKeyUsage, OID.keyUsage, OID.basicConstraints, OID.extensionRequest, OID.challengePassword, '1.3.6.1.4.1.311.2.1.14', OID.clientAuth, OID.secp256r1, OID.secp384r1, '1.3.132.0.10', OID.rsaEncryption, OID.ed25519, OID.ecPublicKey, `${PRIVATE}.5`];

function mutateContent(r: Rng, n: Node): string {
  const b = n.bytes!;
  if (n.tag === Tag.OID && b.length) {
    if (r.chance(0.5)) {
      n.bytes = oid(r.pick(OIDS)).subarray(2);
      return 'oid:replace';
    }
    const at = r.int(b.length);
    n.bytes = Buffer.concat([b.subarray(0, at), Buffer.from([0x80]), b.subarray(at)]);
    return 'oid:0x80';
  }
  if (n.tag === Tag.INTEGER) {
    n.bytes = r.pick([Buffer.from([0]), Buffer.from([1]), Buffer.from([2]), Buffer.from([0x00, 0x05]), Buffer.from([0xff]), Buffer.concat([Buffer.from([0]), b]), r.bytes(1 + r.int(9))]);
    return 'int';
  }
  if (n.tag === Tag.BOOLEAN) {
    n.bytes = r.pick([Buffer.from([0]), Buffer.from([1]), Buffer.from([0xff]), Buffer.alloc(0), Buffer.from([0xff, 0xff])]);
    return 'bool';
  }
  switch (r.int(6)) {
    case 0: {
      const at = r.int(b.length + 1);
      n.bytes = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick(INSERTS)), b.subarray(at)]);
      return 'str:insert';
    }
    case 1:
      n.bytes = Buffer.concat([b.subarray(0, r.int(b.length + 1)), b.subarray(r.int(b.length + 1))]);
      return 'str:cut';
    case 2:
      n.bytes = Buffer.from(b.toString('latin1').toUpperCase(), 'latin1');
      return 'str:upper';
    case 3:
      n.bytes = Buffer.concat(Array.from({ length: 2 + r.int(20) }, () => b));
      return 'str:repeat';
    case 4:
      n.bytes = Buffer.alloc(0);
      return 'str:empty';
    default:
      n.bytes = r.bytes(r.int(24));
      return 'str:random';
  }
}

/** One edit of the tree; returns what it did, for the report. */
function mutateTree(r: Rng, root: Node): string {
  const all = walk(root, undefined, []);
  const { node, parent } = r.pick(all.slice(1));
  const siblings = parent!.kids!;
  const i = siblings.indexOf(node);
  switch (r.int(8)) {
    case 0:
      siblings.splice(i + 1, 0, clone(node));
      return `dup ${node.tag.toString(16)}`;
    case 1:
      siblings.splice(i, 1);
      return `drop ${node.tag.toString(16)}`;
    case 2: {
      const j = r.int(siblings.length);
      [siblings[i], siblings[j]] = [siblings[j]!, siblings[i]!];
      return 'swap';
    }
    case 3: {
      const tag = r.pick(RETAGS);
      const wasConstructed = !!node.kids;
      if (wasConstructed !== !!(tag & 0x20) || node.lead) {
        const body = encode(node);
        node.bytes = Buffer.from(body.subarray(readTlv(body, 0).contentStart));
        delete node.kids;
        delete node.lead;
      }
      const from = node.tag;
      node.tag = tag;
      return `retag ${from.toString(16)}->${tag.toString(16)}`;
    }
    case 4: {
      const targets = all.filter((x) => x.node.kids && !x.node.lead);
      const into = r.pick(targets).node;
      into.kids!.splice(r.int(into.kids!.length + 1), 0, clone(node));
      return `copy ${node.tag.toString(16)} into ${into.tag.toString(16)}`;
    }
    default: {
      const leaves = all.filter((x) => x.node.bytes);
      if (!leaves.length) return 'noop';
      return mutateContent(r, r.pick(leaves).node);
    }
  }
}

function mutateBytes(r: Rng, b: Buffer): { bytes: Buffer; what: string } {
  const at = r.int(b.length);
  const out = Buffer.from(b);
  switch (r.int(5)) {
    case 0:
      out[at]! ^= 1 << r.int(8);
      return { bytes: out, what: `flip@${at}` };
    case 1:
      out[at] = r.int(256);
      return { bytes: out, what: `set@${at}` };
    case 2:
      return { bytes: b.subarray(0, at), what: `truncate@${at}` };
    case 3:
      return { bytes: Buffer.concat([b.subarray(0, at), Buffer.from([r.int(256)]), b.subarray(at)]), what: `insert@${at}` };
    default: {
      // a length octet: the second octet of some header
      out[Math.min(at + 1, out.length - 1)]! += r.pick([1, -1, 0x80, 0x81]);
      return { bytes: out, what: `length@${at}` };
    }
  }
}

export interface FuzzCase {
  der: Buffer;
  /** The mutations applied, in order; [] for an unmutated request. */
  steps: string[];
}

/** Case `seed`: a generated request, most often mutated (info edits are re-signed). */
export function makeCase(seed: number, keys: FuzzKeys): FuzzCase {
  const r = rng(seed);
  const { info, key } = genInfo(r, keys);
  const alg = signatureAlgorithmFor(key);
  const steps: string[] = [];
  let infoDer = info;
  if (!r.chance(0.1)) {
    const tree = toTree(info, readTlv(info, 0));
    for (let n = 1 + r.int(3); n > 0; n--) steps.push(mutateTree(r, tree));
    infoDer = encode(tree);
    if (r.chance(0.2)) {
      const m = mutateBytes(r, infoDer);
      infoDer = m.bytes;
      steps.push(`info ${m.what}`);
    }
  }
  let der = seq(infoDer, alg.der, bitString(sign(alg.digest, infoDer, key)));
  if (r.chance(0.1)) {
    const m = mutateBytes(r, der);
    der = m.bytes;
    steps.push(`outer ${m.what}`);
  }
  return { der, steps };
}

// ---- two readings ----

export interface Reading {
  accepted: boolean;
  /** Our refusal reason, or OpenSSL's first error line. */
  reason?: string;
  /** Per RDN, sorted `oid=#HEX` of each value's TLV (OpenSSL's dump_der form). */
  subject?: string[][];
  spki?: string;
  /** undefined: the extension list could not be read (OpenSSL then prints no "Requested Extensions"). */
  extensions?: Array<{ name: string; critical: boolean; value: string }>;
}

const EXT_NAMES: Record<string, string> = {
  [OID.subjectAltName]: 'X509v3 Subject Alternative Name',
  [OID.basicConstraints]: 'X509v3 Basic Constraints',
  [OID.keyUsage]: 'X509v3 Key Usage',
  [OID.extKeyUsage]: 'X509v3 Extended Key Usage',
  [OID.subjectKeyIdentifier]: 'X509v3 Subject Key Identifier',
  [OID.authorityKeyIdentifier]: 'X509v3 Authority Key Identifier',
};
const EKU_NAMES: Record<string, string> = {
  [OID.clientAuth]: 'TLS Web Client Authentication',
  [OID.serverAuth]: 'TLS Web Server Authentication',
  [OID.cmcRA]: 'CMC Registration Authority',
  '1.3.6.1.5.5.7.3.3': 'Code Signing',
  '1.3.6.1.5.5.7.3.4': 'E-mail Protection',
};
const KU_NAMES: Record<KeyUsageName, string> = {
  digitalSignature: 'Digital Signature',
  nonRepudiation: 'Non Repudiation',
  keyEncipherment: 'Key Encipherment',
  dataEncipherment: 'Data Encipherment',
  keyAgreement: 'Key Agreement',
  keyCertSign: 'Certificate Sign',
  cRLSign: 'CRL Sign',
};

function ipText(v: string): string {
  if (!v.includes(':')) return v;
  // OpenSSL writes all eight groups, upper case, without leading zeros
  const [head, tail] = v.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16).toUpperCase()).join(':');
}

/** Our reading of a SAN entry in OpenSSL's words; only the type of names OpenSSL prints its own way. */
function sanText(csr: Csr): string {
  return csr.subjectAltNames
    .map((n) => {
      switch (n.type) {
        case 'dns': return `DNS:${n.value}`;
        case 'email': return `email:${n.value}`;
        case 'uri': return `URI:${n.value}`;
        case 'ip': return `IP Address:${ipText(n.value)}`;
        case 'registeredId': return 'Registered ID:';
        case 'dirName': return 'DirName:';
        default: return 'othername:';
      }
    })
    .join(', ');
}

function extValue(csr: Csr, id: string): string {
  if (id === OID.subjectAltName) return sanText(csr);
  if (id === OID.basicConstraints) {
    const bc = csr.basicConstraints!;
    return bc.ca ? `CA:TRUE${bc.pathLen === undefined ? '' : `, pathlen:${bc.pathLen}`}` : 'CA:FALSE';
  }
  if (id === OID.keyUsage) return csr.keyUsage!.map((k) => KU_NAMES[k]).join(', ');
  if (id === OID.extKeyUsage) return csr.extKeyUsage!.map((p) => EKU_NAMES[p] ?? p).join(', ');
  return '';
}

const valueTlv = (tag: number, value: string) => tlv(tag, Buffer.from(value, tag === Tag.UTF8String ? 'utf8' : 'latin1')).toString('hex').toUpperCase();

export function ourReading(der: Buffer): Reading {
  let csr: Csr;
  try {
    csr = parseCsr(der);
    if (!verifyCsr(csr)) return { accepted: false, reason: 'signature does not verify' };
  } catch (e) {
    // parseCsr wraps what it throws; a cause that is no EstError was a crash inside the codec
    const cause = (e as Error).cause;
    if (e instanceof EstError && (cause === undefined || cause instanceof EstError)) return { accepted: false, reason: e.message };
    throw cause ?? e;
  }
  return {
    accepted: true,
    subject: csr.subject.map((rdn) => rdn.map((a) => `${a.type}=#${valueTlv(a.tag, a.value)}`).sort()),
    spki: csr.spki.toString('hex'),
    extensions: csr.extensions.map((e) => ({ name: EXT_NAMES[e.oid] ?? e.oid, critical: e.critical, value: extValue(csr, e.oid) })),
  };
}

const OPENSSL_ARGS = [
  'req', '-inform', 'DER', '-noout', '-verify', '-pubkey', '-subject', '-nameopt', 'oid,dump_all,dump_der,sep_multiline',
  '-text', '-reqopt', 'no_header,no_version,no_subject,no_pubkey,no_sigdump,no_signame,no_attributes,ext_error',
];

export async function opensslReading(der: Buffer): Promise<Reading> {
  const res = await run('openssl', OPENSSL_ARGS, { input: der, timeoutMs: 30_000 });
  const out = res.stdout.toString('utf8');
  if (res.code !== 0 || !/verify OK/.test(res.stderr)) {
    return { accepted: false, reason: res.stderr.split('\n').find((l) => /error|fail/i.test(l)) ?? `exit ${res.code}` };
  }
  const pem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/.exec(out);
  const subjectAt = out.lastIndexOf('\nsubject=');
  const subjectLines = out.slice(subjectAt + '\nsubject='.length).split('\n').map((l) => l.trim()).filter(Boolean);
  const textPart = out.slice(pem ? pem.index + pem[0].length : 0, subjectAt);
  const lines = textPart.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'Requested Extensions:');
  let extensions: Reading['extensions'];
  if (start >= 0) {
    extensions = [];
    for (const l of lines.slice(start + 1)) {
      const head = /^ {16}(\S.*?): ?(critical)?$/.exec(l);
      if (head) extensions.push({ name: head[1]!, critical: head[2] === 'critical', value: '' });
      else if (/^ {20}/.test(l) && extensions.length) {
        const last = extensions.at(-1)!;
        last.value = last.value ? `${last.value}\n${l.trim()}` : l.trim();
      }
    }
  }
  return {
    accepted: true,
    subject: subjectLines.map((l) => l.split(' + ').sort()),
    ...(pem ? { spki: fromPemAll(pem[0], 'PUBLIC KEY')[0]!.toString('hex') } : {}),
    ...(extensions ? { extensions } : {}),
  };
}

/**
 * Where we refuse what OpenSSL takes, on purpose: each our reason pattern and why.
 * A refusal matching none of these, while OpenSSL accepts, is a finding.
 */
export const STRICTER: Array<{ reason: RegExp; why: string }> = [
  { reason: /non-minimal length|indefinite length|length too large|high tag number/, why: 'DER only (X.690 §10): BER lengths would let two encodings carry one signature' },
  { reason: /unsupported CSR version|INTEGER: (negative|out of range)/, why: 'RFC 2986 §4.1: version is 0; OpenSSL 3.0 takes any' },
  { reason: /OID: subidentifier is not minimally encoded/, why: 'X.690 §8.19.2; OpenSSL refuses such an OID too, but in the extension list only when it reads it, and then drops the whole list' },
  { reason: /extra fields/, why: 'RFC 2986: nothing after the attributes or the signature' },
  { reason: /duplicate (attribute|extension)/, why: 'RFC 2986 §4.1 / RFC 5280 §4.2: one reading per request; OpenSSL reads the first of two' },
  { reason: /empty RDN/, why: 'X.501: RelativeDistinguishedName is SET SIZE (1..MAX)' },
  { reason: /string: unexpected tag/, why: 'name values are strings: an attribute value of another type cannot be checked or matched' },
  { reason: /extensionRequest must have one value/, why: 'PKCS#9: extensionRequest is SINGLE VALUE; OpenSSL reads the first' },
  { reason: /duplicate .* in one RDN/, why: 'X.501: distinct values in an RDN; CN=a+CN=a is ambiguous to match' },
  { reason: /extKeyUsage: (empty|a purpose is listed twice)/, why: 'RFC 5280 §4.2.1.12: SIZE (1..MAX); an empty EKU would issue as any purpose' },
  { reason: /subjectAltName: empty/, why: 'RFC 5280 §4.2.1.6: GeneralNames SIZE (1..MAX)' },
  { reason: /dNSName|rfc822Name|URI |directoryName/, why: 'RFC 5280 §4.2.1.6 name syntaxes: OpenSSL copies any IA5String' },
  { reason: /control character|PrintableString|IA5String|UTF8String or PrintableString|must be a|is longer than|is empty|must be 2 letters|is not a mailbox|is not a DNS label/, why: 'RFC 5280 §4.1.2.4 and Appendix A: DirectoryString types, charsets and bounds' },
  { reason: /challengePassword/, why: 'PKCS#9: one DirectoryString value of 1..255 characters' },
  { reason: /has no value/, why: 'RFC 2986: attribute values are SET SIZE (1..MAX)' },
  { reason: /not valid UTF-8|BMPString|UniversalString/, why: 'one-to-one string decoding' },
  { reason: /unsupported (public key algorithm|elliptic curve|signature algorithm)|named curve/, why: 'only the key and signature algorithms the gateway issues for' },
  { reason: /RSA (key|modulus|exponent)|RSAPublicKey|EC public key|Ed25519 key|subjectPublicKey|SubjectPublicKeyInfo|AlgorithmIdentifier/, why: 'SPKI in its one DER form (RFC 3279, RFC 5480, RFC 8410): we copy it verbatim' },
  { reason: /signatureAlgorithm/, why: 'AlgorithmIdentifier: an OID and at most one parameter' },
  { reason: /unsupported GeneralName tag|otherName/, why: 'x400Address and ediPartyName are not issued; otherName in its RFC 5280 form' },
  { reason: /keyUsage: bad unused-bits/, why: 'X.690 §8.6.2: unused bits 0..7, none in an empty BIT STRING' },
  { reason: /signature BIT STRING must have no unused bits/, why: 'a signature is whole octets' },
  { reason: /trailing bytes after DER/, why: 'an extension value is one DER element; OpenSSL reads the first and ignores what follows' },
  { reason: /iPAddress length/, why: 'RFC 5280 §4.2.1.6: 4 or 16 octets in a SAN (8 and 32 are name constraints)' },
];

const stricter = (reason: string) => STRICTER.some((s) => s.reason.test(reason));

/** What is wrong with two readings of one input, or undefined when they agree (or differ on purpose). */
export function disagreement(ours: Reading, theirs: Reading): string | undefined {
  if (!ours.accepted && !theirs.accepted) return undefined;
  if (!ours.accepted) {
    if (stricter(ours.reason!) || !theirs.accepted) return undefined;
    // OpenSSL reads the extension request only when asked: a list it cannot decode is dropped whole,
    // one it can decode with an extension it cannot is printed "<Parse Error>"; we refuse either
    if (!theirs.extensions) return undefined;
    const ext = /(subjectAltName|basicConstraints|keyUsage|extKeyUsage)(: |$)/.exec(ours.reason!);
    const id = ext && (OID as Record<string, string>)[ext[1]!];
    if (id && theirs.extensions.some((e) => e.name === EXT_NAMES[id] && e.value === '<Parse Error>')) return undefined;
    return `we refuse (${ours.reason}), OpenSSL accepts`;
  }
  if (!theirs.accepted) return `we accept, OpenSSL refuses (${theirs.reason})`;
  if (JSON.stringify(ours.subject) !== JSON.stringify(theirs.subject)) return `subject: ours ${JSON.stringify(ours.subject)}, OpenSSL ${JSON.stringify(theirs.subject)}`;
  if (ours.spki !== theirs.spki) return 'public key: OpenSSL reads another SPKI';
  if (!theirs.extensions) return `OpenSSL cannot read the extension list we read as ${ours.extensions!.map((e) => e.name).join(', ')}`;
  const a = ours.extensions!;
  const b = theirs.extensions;
  if (a.length !== b.length) return `extensions: ours [${a.map((e) => e.name)}], OpenSSL [${b.map((e) => e.name)}]`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const sameName = x.name === y.name || (!x.name.startsWith('X509v3') && !/^\d+(\.\d+)+$/.test(y.name));
    if (!sameName || x.critical !== y.critical) return `extension ${i}: ours ${x.name}${x.critical ? ' critical' : ''}, OpenSSL ${y.name}${y.critical ? ' critical' : ''}`;
    if (!x.value) continue;
    const theirsValue = x.name === EXT_NAMES[OID.keyUsage] ? y.value.split(', ').filter((k) => !/Encipher Only|Decipher Only/.test(k)).join(', ') : y.value;
    if (x.name === EXT_NAMES[OID.subjectAltName]) {
      const mine = x.value.split(', ');
      const its = theirsValue.split(', ');
      if (mine.length !== its.length || mine.some((m, j) => (m.endsWith(':') ? !its[j]!.startsWith(m) : m !== its[j]))) return `subjectAltName: ours ${x.value}, OpenSSL ${y.value}`;
    } else if (x.name === EXT_NAMES[OID.extKeyUsage]) {
      // purposes we have no name for may have one in OpenSSL
      const mine = x.value.split(', ');
      const its = theirsValue.split(', ');
      if (mine.length !== its.length || mine.some((m, j) => m !== its[j] && !(/^\d+(\.\d+)+$/.test(m) && !/^\d+(\.\d+)+$/.test(its[j]!)))) return `${x.name}: ours ${x.value}, OpenSSL ${y.value}`;
    } else if (x.value !== theirsValue) return `${x.name}: ours ${x.value}, OpenSSL ${y.value}`;
  }
  return undefined;
}

export interface Finding {
  seed: number;
  steps: string[];
  der: string;
  problem: string;
}

export interface FuzzOptions {
  /** Run `count` cases of the run seeded `seed`, or exactly the cases `caseSeeds`. */
  seed?: number;
  count?: number;
  caseSeeds?: number[];
  keys?: FuzzKeys;
  concurrency?: number;
  onCase?: (i: number) => void;
}

/** Runs the cases: returns the findings, each with the DER (base64) that reproduces it. */
export async function fuzz(o: FuzzOptions): Promise<{ findings: Finding[]; accepted: number; refused: number }> {
  const keys = o.keys ?? (await fuzzKeys());
  const seeds = o.caseSeeds ?? Array.from({ length: o.count ?? 0 }, (_, i) => caseSeed(o.seed ?? 0, i));
  const findings: Finding[] = [];
  let next = 0;
  let accepted = 0;
  let refused = 0;
  const worker = async () => {
    while (next < seeds.length) {
      const i = next++;
      const seed = seeds[i]!;
      const c = makeCase(seed, keys);
      let problem: string | undefined;
      let ours: Reading | undefined;
      try {
        ours = ourReading(c.der);
      } catch (e) {
        problem = `parseCsr crashed: ${(e as Error).stack?.split('\n').slice(0, 3).join(' ')}`;
      }
      if (ours) {
        if (!c.steps.length && !ours.accepted) problem = `an unmutated request was refused: ${ours.reason}`;
        // a documented refusal stands whatever OpenSSL says: spare the process
        else if (ours.accepted || !stricter(ours.reason!)) problem = disagreement(ours, await opensslReading(c.der));
        if (ours.accepted) accepted++;
        else refused++;
      }
      if (problem) findings.push({ seed, steps: c.steps, der: c.der.toString('base64'), problem });
      o.onCase?.(i);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 3 }, worker));
  return { findings, accepted, refused };
}
