// Issuance policy: may this identity get a certificate with these names, this
// key and these extensions on this label? Knows nothing of HTTP or signing.
import { forbidden } from '../errors.js';
import type { Csr } from '../est/csr.js';
import { EKU_NAMES } from '../est/extensions.js';
import { commonNames, formatName } from '../est/name.js';
import { OID } from '../est/oids.js';
import { describeKey } from '../est/spki.js';
import type { GrantConfig, LabelConfig } from '../config/schema.js';

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

function globToRegExp(glob: string, identity: Identity): RegExp {
  const parts = glob.split('{identity}').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*'));
  const id = identity.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${parts.join(id)}$`, 'i');
}

const matchesAny = (value: string, globs: string[], identity: Identity) => globs.some((g) => globToRegExp(g, identity).test(value));

export class LabelPolicy {
  private readonly ekuOids: string[];

  constructor(
    readonly label: string,
    private readonly cfg: LabelConfig,
  ) {
    this.ekuOids = cfg.ext_key_usage.map((n) => EKU_NAMES[n]!);
  }

  /** Key type and size (RFC 7030 leaves this to the CA; so do we, per label). */
  checkKey(csr: Csr): void {
    const k = csr.key;
    if (!this.cfg.key_types.includes(k.type)) {
      throw forbidden(`key type ${describeKey(k)} is not allowed on label "${this.label}" (allowed: ${this.cfg.key_types.join(', ')})`);
    }
    if (k.type === 'rsa' && k.bits < this.cfg.rsa_min_bits) {
      throw forbidden(`RSA keys must have at least ${this.cfg.rsa_min_bits} bits, this one has ${k.bits}`);
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

  private grantsFor(identity: Identity): GrantConfig[] {
    // a client that showed a certificate and a password may use the grants of either
    const names = [identityString(identity), ...(identity.user === undefined ? [] : [`user:${identity.user}`])];
    return this.cfg.grants.filter((g) => (Array.isArray(g.identity) ? g.identity : [g.identity]).some((p) => names.some((n) => matchesAny(n, [p], identity))));
  }

  /**
   * simpleenroll and serverkeygen: the identity must hold a grant that covers
   * every name in the request, and CA requests need a grant that allows them.
   */
  decideEnroll(identity: Identity, csr: Csr): Decision {
    this.checkKey(csr);
    const grants = this.grantsFor(identity);
    if (grants.length === 0) throw forbidden(`${identityString(identity)} may not enroll on label "${this.label}"`);
    const cns = commonNames(csr.subject);
    const wantsCa = csr.basicConstraints?.ca === true;
    const reasons: string[] = [];
    for (const g of grants) {
      const why = this.grantRefuses(g, identity, csr, cns, wantsCa);
      if (!why) return this.decision(csr, wantsCa ? (csr.basicConstraints?.pathLen ?? g.max_path_len) : undefined);
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

  private grantRefuses(g: GrantConfig, id: Identity, csr: Csr, cns: string[], wantsCa: boolean): string | undefined {
    for (const cn of cns) if (!matchesAny(cn, g.common_names, id)) return `CN "${cn}" is not allowed`;
    for (const n of csr.subjectAltNames) {
      const globs = n.type === 'dns' ? g.dns_names : n.type === 'ip' ? g.ip_addresses : n.type === 'email' ? g.emails : n.type === 'uri' ? g.uris : undefined;
      if (!globs) return `subjectAltName of type ${n.type} is not allowed`;
      if (!matchesAny(n.value, globs, id)) return `subjectAltName ${n.type}:${n.value} is not allowed`;
    }
    if (wantsCa) {
      if (!g.allow_ca) return 'CA certificates are not allowed';
      const pl = csr.basicConstraints?.pathLen;
      if (pl !== undefined && pl > g.max_path_len) return `pathLen ${pl} exceeds the allowed ${g.max_path_len}`;
    } else if (csr.keyUsage?.includes('keyCertSign')) {
      return 'keyCertSign needs a CA request (basicConstraints CA:TRUE)';
    }
    return undefined;
  }

  /** `caPathLen` set: issue a CA certificate with that pathLen. */
  private decision(csr: Csr, caPathLen?: number): Decision {
    const san = csr.extensions.find((e) => e.oid === OID.subjectAltName);
    const d: Decision = { extKeyUsage: caPathLen === undefined ? this.extKeyUsage(csr) : [], validityDays: this.cfg.cert_days };
    if (san) d.subjectAltNameDer = san.value;
    if (caPathLen !== undefined) d.ca = { pathLen: caPathLen };
    return d;
  }
}
