// Syntax of the names a CSR asks for: the RFC 5280 §4.2.1.6 GeneralName forms,
// and subject values as RFC 5280 §4.1.2.4 DirectoryStrings within the Appendix A
// bounds. Subject and SAN are copied into the certificate byte for byte and a
// grant's `*` matches any string, so this is where a hostile value stops.
import { isIPv4, isIPv6 } from 'node:net';
import { malformed } from '../errors.js';
import { Tag, clip } from './der.js';
import { type GeneralName, type Rdns, isWildcardDns, preparedValue } from './name.js';
import { NAME_ATTR, OID } from './oids.js';

export interface NameLimits {
  /** Longest CN, and longest value of an attribute without an Appendix A bound of its own. */
  maxNameLength: number;
}
/** ub-common-name (RFC 5280 Appendix A). */
export const DEFAULT_NAME_LIMITS: NameLimits = { maxNameLength: 64 };

const QUOTE_MAX = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/**
 * Invisible and direction-changing format characters (Unicode Cf) but the two
 * joiners some scripts need, and line and paragraph separators: "plc-7\u202Eexe.1" prints as "plc-71.exe", so an
 * operator reading a list or a log would see another name.
 */
const FORMAT = /(?![\u200c\u200d])[\p{Cf}\p{Zl}\p{Zp}]/u;
/** What a terminal or log viewer must never get raw from a client: controls, format characters, line and paragraph separators. */
const UNSHOWABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const escapeChar = (c: string) => {
  const cp = c.codePointAt(0)!;
  return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
};

/** Text from a client as one safe line: every control, format character and line separator as \uXXXX. */
export function escapeUnshowable(text: string): string {
  return text.replace(UNSHOWABLE, escapeChar);
}

/** A value as a reason shows it: quoted, unshowable characters escaped, cut after 64 characters. */
export function quote(value: string): string {
  const chars = [...value];
  const shown = escapeUnshowable(chars.slice(0, QUOTE_MAX).join('').replace(/["\\]/g, (c) => `\\${c}`));
  return `"${shown}${chars.length > QUOTE_MAX ? '…' : ''}"`;
}

// ---- host names: RFC 1034 §3.5 preferred name syntax, RFC 1123 §2.1 digits first ----

const LDH = /^[A-Za-z0-9-]+$/;

/** Why `name` is not a host name in preferred name syntax; undefined when it is one. */
function hostProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (name.endsWith('.')) return 'ends in a dot';
  for (const label of name.split('.')) {
    if (label === '') return 'has an empty label';
    if (label.length > 63) return 'has a label longer than 63 characters';
    if (!LDH.test(label)) return `has ${quote([...label].find((c) => !/[A-Za-z0-9-]/.test(c))!)}, not a letter, digit or hyphen`;
    if (label.startsWith('-') || label.endsWith('-')) return 'has a label that starts or ends with a hyphen';
  }
  return undefined;
}

function dnsProblem(name: string): string | undefined {
  if (name.length > 253) return 'is longer than 253 characters';
  const host = isWildcardDns(name) ? name.slice(2) : name;
  if (host.includes('*')) return 'has a wildcard that is not the whole left-most label';
  return hostProblem(host);
}

// ---- rfc822Name: an RFC 5321 Mailbox, local-part a dot-atom ----

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM = new RegExp(`^${ATEXT}(?:\\.${ATEXT})*$`);

function mailboxProblem(v: string): string | undefined {
  if (v.length > 254) return 'is longer than 254 characters';
  const at = v.lastIndexOf('@');
  if (at < 0) return 'has no @';
  const local = v.slice(0, at);
  const domain = v.slice(at + 1);
  if (local === '') return 'has an empty local part';
  if (local.length > 64) return 'has a local part longer than 64 characters';
  // quoted local parts and address literals are valid RFC 5321 but no device needs them
  if (!DOT_ATOM.test(local)) return 'has a local part that is not a plain dot-atom';
  const d = hostProblem(domain);
  return d && `has a domain that ${d}`;
}

function notMailbox(v: string): string | undefined {
  const why = mailboxProblem(v);
  return why && `is not a mailbox: ${why}`;
}

// ---- URI: RFC 3986 absolute URI; with an authority, a host name or IP (RFC 5280 §4.2.1.6) ----

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;

function uriProblem(v: string): string | undefined {
  const scheme = SCHEME.exec(v);
  if (!scheme) return 'has no scheme (RFC 3986 §3.1)';
  if (!URI_CHARS.test(v)) return 'has characters a URI does not allow (RFC 3986 §2)';
  if (/%(?![0-9A-Fa-f]{2})/.test(v)) return 'has a broken percent-escape';
  const rest = v.slice(scheme[0].length);
  if (rest === '') return 'has nothing after the scheme';
  if (!rest.startsWith('//')) return undefined;
  const authority = rest.slice(2).split(/[/?#]/, 1)[0]!;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  let host: string;
  let port = '';
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    host = close < 0 ? '' : hostPort.slice(1, close);
    if (!isIPv6(host)) return 'has a bad IPv6 literal';
    const after = hostPort.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return 'has a bad port';
    port = after.slice(1);
  } else {
    const colon = hostPort.lastIndexOf(':');
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
    port = colon < 0 ? '' : hostPort.slice(colon + 1);
    if (!isIPv4(host) && hostProblem(host)) return 'has a host that is not a domain name or IP address';
  }
  if (port !== '' && !(/^\d{1,5}$/.test(port) && Number(port) <= 65535)) return 'has a bad port';
  return undefined;
}

/** RFC 5280 §4.2.1.6: each name in the syntax of its form. */
export function checkGeneralNames(names: GeneralName[], limits: NameLimits = DEFAULT_NAME_LIMITS): void {
  for (const n of names) {
    let why: string | undefined;
    let what: string;
    if (n.type === 'dns') [what, why] = ['dNSName', dnsProblem(n.value)];
    else if (n.type === 'email') [what, why] = ['rfc822Name', notMailbox(n.value)];
    else if (n.type === 'uri') [what, why] = ['URI', uriProblem(n.value)];
    else if (n.type === 'dirName') {
      checkName(n.name!, limits, 'directoryName ');
      continue;
    } else continue; // iPAddress length, registeredID and otherName structure are checked as they are parsed
    if (why) throw malformed(`${what} ${quote(n.value)} ${why}`);
  }
}

// ---- subject attributes: DirectoryString and the Appendix A upper bounds ----

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const TAG_NAME: Record<number, string> = { [Tag.UTF8String]: 'UTF8String', [Tag.PrintableString]: 'PrintableString', [Tag.IA5String]: 'IA5String' };

interface AttributeRule {
  /** String types allowed; a DirectoryString we copy is UTF8String or PrintableString (RFC 5280 §4.1.2.4). */
  tags: number[];
  /** Upper bound in characters; absent: the label's max_name_length. */
  max?: number;
  syntax?: (v: string) => string | undefined;
}

const DIRECTORY = [Tag.UTF8String, Tag.PrintableString];
const bound = (max: number): AttributeRule => ({ tags: DIRECTORY, max });
const RULES: Record<string, AttributeRule> = {
  [OID.countryName]: { tags: [Tag.PrintableString], syntax: (v) => (/^[A-Za-z]{2}$/.test(v) ? undefined : 'must be 2 letters (ISO 3166)') },
  [OID.serialNumber]: { tags: [Tag.PrintableString], max: 64 },
  '2.5.4.46': { tags: [Tag.PrintableString] }, // dnQualifier
  [OID.organizationName]: bound(64),
  [OID.organizationalUnitName]: bound(64),
  '2.5.4.12': bound(64), // title
  [OID.localityName]: bound(128),
  [OID.stateOrProvinceName]: bound(128),
  '2.5.4.9': bound(128), // streetAddress
  '2.5.4.17': bound(40), // postalCode
  '2.5.4.65': bound(128), // pseudonym
  '2.5.4.4': bound(32768), // surname: ub-name
  '2.5.4.41': bound(32768), // name
  '2.5.4.42': bound(32768), // givenName
  '2.5.4.43': bound(32768), // initials
  '2.5.4.44': bound(32768), // generationQualifier
  [OID.commonName]: { tags: DIRECTORY },
  [OID.userId]: { tags: DIRECTORY },
  [OID.emailAddress]: { tags: [Tag.IA5String], max: 255, syntax: (v) => notMailbox(v) },
  [OID.domainComponent]: { tags: [Tag.IA5String], max: 63, syntax: (v) => (hostProblem(v) || v.includes('.') ? 'is not a DNS label' : undefined) },
};
/** Attribute types we have no rule for: any plain string type, the label's bound. */
const OTHER: AttributeRule = { tags: [Tag.UTF8String, Tag.PrintableString, Tag.IA5String] };

const typesText = (tags: number[]) => {
  const names = tags.map((t) => TAG_NAME[t]!);
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  return `${list.startsWith('IA5') ? 'an' : 'a'} ${list}`;
};

/** One string value of `what` in type `tag`; also used for challengePassword. */
export function checkStringValue(what: string, tag: number, value: string, rule: { tags: number[]; max: number; syntax?: (v: string) => string | undefined }): void {
  if (!rule.tags.includes(tag)) throw malformed(`${what} must be ${typesText(rule.tags)}`);
  if (CONTROL.test(value)) throw malformed(`${what} ${quote(value)} has a control character`);
  if (FORMAT.test(value)) throw malformed(`${what} ${quote(value)} has an invisible or bidirectional formatting character`);
  if (tag === Tag.PrintableString && !PRINTABLE.test(value)) throw malformed(`${what} ${quote(value)} has characters a PrintableString does not allow`);
  if (tag === Tag.IA5String && /[^\u0000-\u007f]/.test(value)) throw malformed(`${what} ${quote(value)} is not ASCII (IA5String)`);
  if (value === '') throw malformed(`${what} is empty`);
  // bounds count characters (RFC 5280 Appendix A), not octets; UTF-16 units are never fewer than characters
  if (value.length > rule.max && [...value].length > rule.max) throw malformed(`${what} ${quote(value)} is longer than ${rule.max} characters`);
  const why = rule.syntax?.(value);
  if (why) throw malformed(`${what} ${quote(value)} ${why}`);
}

/** A subject (or directoryName): every value in its syntax and bound, no attribute twice in one RDN. */
export function checkName(rdns: Rdns, limits: NameLimits = DEFAULT_NAME_LIMITS, prefix = ''): void {
  for (const rdn of rdns) {
    const seen = rdn.length > 1 ? new Set<string>() : undefined;
    for (const a of rdn) {
      const what = `${prefix}${NAME_ATTR[a.type] ?? clip(a.type)}`;
      const rule = RULES[a.type] ?? OTHER;
      checkStringValue(what, a.tag, a.value, rule.max === undefined ? { ...rule, max: limits.maxNameLength } : (rule as typeof rule & { max: number }));
      if (!seen) continue;
      // X.501: the values of one RDN are distinct; equal ones make matching ambiguous
      const key = `${a.type}\u0000${preparedValue(a.value)}`;
      if (seen.has(key)) throw malformed(`duplicate ${what} in one RDN`);
      seen.add(key);
    }
  }
}
