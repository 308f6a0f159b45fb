// Issuance policy: may this identity get a certificate with these names, this
// key and these extensions on this label? Knows nothing of HTTP or signing.
import { forbidden } from '../errors.js';
import type { Csr } from '../est/csr.js';
import { EKU_NAMES } from '../est/extensions.js';
import { formatName } from '../est/name.js';
import { NAME_ATTR, OID } from '../est/oids.js';
import { Glob, anyMatches } from './glob.js';
import { describeKey } from '../est/spki.js';
import { type GrantConfig, type LabelConfig, labelValidityDays } from '../config/schema.js';

export interface Identity {
  /** `user` = HTTP Basic, `cert` = TLS client certificate. */
  kind: 'user' | 'cert';
  /** User name, or the certificate's subject CN (or whole subject when it has none). */
  name: string;
  /** RFC 4514 subject of the client certificate, when one authenticated. */
  certSubject?: string;
  /** Basic user that also authenticated, when both did. */
  user?: string;
  /** The client certificate carries id-kp-cmcRA: a registration authority (RFC 7030 §3.7). */
  ra?: boolean;
}

export const identityString = (id: Identity) => `${id.kind}:${id.name}`;

/** What policy decided for an allowed request. */
export interface Decision {
  subjectAltNameDer?: Buffer;
  extKeyUsage: string[];
  validityDays: number;
  ca?: { pathLen?: number };
}

/** A grant with its patterns compiled. */
interface CompiledGrant {
  cfg: GrantConfig;
  identity: Glob[];
  commonNames: Glob[];
  dns: Glob[];
  ip: Glob[];
  email: Glob[];
  uri: Glob[];
  /** Subject attributes besides CN: the attribute's short name, and a glob on its value. */
  attributes: Array<{ name: string; value: Glob }>;
}

function compileGrant(g: GrantConfig): CompiledGrant {
  const globs = (ps: string[]) => ps.map((p) => new Glob(p));
  return {
    cfg: g,
    identity: globs(Array.isArray(g.identity) ? g.identity : [g.identity]),
    commonNames: globs(g.common_names),
    dns: globs(g.dns_names),
    ip: globs(g.ip_addresses),
    email: globs(g.emails),
    uri: globs(g.uris),
    attributes: g.subject_attributes.map((a) => {
      const i = a.indexOf('=');
      return i < 0 ? { name: a.toUpperCase(), value: new Glob('*') } : { name: a.slice(0, i).toUpperCase(), value: new Glob(a.slice(i + 1)) };
    }),
  };
}

export class LabelPolicy {
  private readonly ekuOids: string[];
  private readonly grants: CompiledGrant[];

  constructor(
    readonly label: string,
    private readonly cfg: LabelConfig,
  ) {
    this.ekuOids = cfg.ext_key_usage.map((n) => EKU_NAMES[n]!);
    this.grants = cfg.grants.map(compileGrant);
  }

  /**
   * Key type, size and RSA exponent (RFC 7030 leaves this to the CA; so do we, per
   * label). Cheap, from the SPKI alone: decodeCsr runs it before the signature,
   * which a huge modulus or exponent would make expensive to verify.
   */
  checkKey(csr: Csr): void {
    const k = csr.key;
    if (!this.cfg.key_types.includes(k.type)) {
      throw forbidden(`key type ${describeKey(k)} is not allowed on label "${this.label}" (allowed: ${this.cfg.key_types.join(', ')})`);
    }
    if (k.type !== 'rsa') return;
    if (k.bits < this.cfg.rsa_min_bits) throw forbidden(`RSA keys must have at least ${this.cfg.rsa_min_bits} bits, this one has ${k.bits}`);
    if (k.bits > this.cfg.rsa_max_bits) throw forbidden(`RSA keys must have at most ${this.cfg.rsa_max_bits} bits, this one has ${k.bits}`);
    const e = k.exponent ?? 0n;
    if (e < 3n || e % 2n === 0n || e > BigInt(this.cfg.rsa_max_exponent)) {
      const shown = e < 1n << 64n ? String(e) : `a ${e.toString(2).length}-bit number`;
      throw forbidden(`RSA public exponent ${shown} is not allowed on label "${this.label}": it must be odd, at least 3 and at most ${this.cfg.rsa_max_exponent}`);
    }
  }

  /** The EKUs to issue: the label's set; a CSR may narrow it but never widen it. */
  private extKeyUsage(csr: Csr): string[] {
    const asked = csr.extKeyUsage;
    if (!asked) return this.ekuOids;
    const extra = asked.filter((o) => !this.ekuOids.includes(o));
    if (extra.length) throw forbidden(`extended key usage ${extra.join(', ')} is not allowed on label "${this.label}"`);
    return asked;
  }

  private grantsFor(identity: Identity): CompiledGrant[] {
    // a client that showed a certificate and a password may use the grants of either
    const names = [identityString(identity), ...(identity.user === undefined ? [] : [`user:${identity.user}`])];
    return this.grants.filter((g) => names.some((n) => anyMatches(g.identity, n, identity.name)));
  }

  /**
   * simpleenroll and serverkeygen: the identity must hold a grant that covers
   * every name in the request, and CA requests need a grant that allows them.
   */
  decideEnroll(identity: Identity, csr: Csr, o: { serverKeygen?: boolean } = {}): Decision {
    // serverkeygen: the server makes the key; the CSR's own key is ignored (RFC 7030 §4.4.1)
    if (!o.serverKeygen) this.checkKey(csr);
    const grants = this.grantsFor(identity);
    if (grants.length === 0) throw forbidden(`${identityString(identity)} may not enroll on label "${this.label}"`);
    const wantsCa = csr.basicConstraints?.ca === true;
    const reasons: string[] = [];
    for (const g of grants) {
      const why = this.grantRefuses(g, identity, csr, wantsCa);
      if (!why) return this.decision(csr, wantsCa ? (csr.basicConstraints?.pathLen ?? g.cfg.max_path_len) : undefined);
      reasons.push(why);
    }
    throw forbidden(`${identityString(identity)} may not request ${formatName(csr.subject) || 'an empty subject'}: ${reasons[0]}`);
  }

  /**
   * simplereenroll: names were authorized when the certificate was first issued
   * and are checked equal to it by the caller; key and extensions are checked again.
   */
  decideReenroll(csr: Csr, current: { basicConstraints?: { ca: boolean; pathLen?: number } }): Decision {
    this.checkKey(csr);
    if (!csr.basicConstraints?.ca) return this.decision(csr);
    const cur = current.basicConstraints;
    if (!cur?.ca) throw forbidden('a certificate that is not a CA cannot be re-enrolled as a CA');
    const pl = csr.basicConstraints.pathLen ?? cur.pathLen ?? 0;
    if (cur.pathLen !== undefined && pl > cur.pathLen) throw forbidden(`pathLen ${pl} exceeds the current certificate's ${cur.pathLen}`);
    return this.decision(csr, pl);
  }

  private grantRefuses(g: CompiledGrant, id: Identity, csr: Csr, wantsCa: boolean): string | undefined {
    for (const attr of csr.subject.flat()) {
      if (attr.type === OID.commonName) {
        if (!anyMatches(g.commonNames, attr.value, id.name)) return `CN "${attr.value}" is not allowed`;
      } else if (attr.type === OID.emailAddress) {
        if (!anyMatches(g.email, attr.value, id.name)) return `emailAddress "${attr.value}" is not allowed`;
      } else {
        const name = (NAME_ATTR[attr.type] ?? attr.type).toUpperCase();
        const ok = g.attributes.some((a) => (a.name === '*' || a.name === name) && a.value.test(attr.value, id.name));
        if (!ok) return `subject attribute ${NAME_ATTR[attr.type] ?? attr.type}="${attr.value}" is not allowed`;
      }
    }
    for (const n of csr.subjectAltNames) {
      const globs = n.type === 'dns' ? g.dns : n.type === 'ip' ? g.ip : n.type === 'email' ? g.email : n.type === 'uri' ? g.uri : undefined;
      if (!globs) return `subjectAltName of type ${n.type} is not allowed`;
      if (!anyMatches(globs, n.value, id.name)) return `subjectAltName ${n.type}:${n.value} is not allowed`;
    }
    if (wantsCa) {
      if (!g.cfg.allow_ca) return 'CA certificates are not allowed';
      const pl = csr.basicConstraints?.pathLen;
      if (pl !== undefined && pl > g.cfg.max_path_len) return `pathLen ${pl} exceeds the allowed ${g.cfg.max_path_len}`;
    } else if (csr.keyUsage?.includes('keyCertSign')) {
      return 'keyCertSign needs a CA request (basicConstraints CA:TRUE)';
    }
    return undefined;
  }

  /** `caPathLen` set: issue a CA certificate with that pathLen. */
  private decision(csr: Csr, caPathLen?: number): Decision {
    const san = csr.extensions.find((e) => e.oid === OID.subjectAltName);
    const d: Decision = { extKeyUsage: caPathLen === undefined ? this.extKeyUsage(csr) : [], validityDays: labelValidityDays(this.cfg) };
    if (san) d.subjectAltNameDer = san.value;
    if (caPathLen !== undefined) d.ca = { pathLen: caPathLen };
    return d;
  }
}
