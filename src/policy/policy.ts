// Issuance policy: may this identity get a certificate with these names, this
// key and these extensions on this label? Knows nothing of HTTP or signing.
import { forbidden } from '../errors.js';
import type { CertFields } from '../est/certificate.js';
import { CERTIFICATE_POLICIES, decodeCertificatePolicies } from '../est/certificate-policies.js';
import type { Csr } from '../est/csr.js';
import { EKU_NAMES } from '../est/extensions.js';
import { formatName } from '../est/name.js';
import { quote } from '../est/name-syntax.js';
import { NAME_ATTR, OID } from '../est/oids.js';
import { Glob, anyMatches } from './glob.js';
import { type Identity, IdentityPattern, identityString } from './identity.js';
import { describeKey } from '../est/spki.js';
import { type GrantConfig, type LabelConfig, labelValidityDays } from '../config/schema.js';

export { type Identity, type Role, identityString } from './identity.js';


/** What policy decided for an allowed request. */
export interface Decision {
  subjectAltNameDer?: Buffer;
  extKeyUsage: string[];
  validityDays: number;
  ca?: { pathLen?: number };
  /** The certificate spans (notBefore to notAfter, backdating included) no longer than this. */
  maxSpanMs?: number;
  /** certificatePolicies OID naming the label's profile (profile_oid), written into the certificate. */
  profileOid?: string;
  /** `manual`: held for an operator (src/approval) before it is issued; the grant's setting, else the label's. */
  approval: 'auto' | 'manual';
}

/** A grant with its patterns compiled. */
interface CompiledGrant {
  cfg: GrantConfig;
  identity: IdentityPattern[];
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
    identity: (Array.isArray(g.identity) ? g.identity : [g.identity]).map((p) => new IdentityPattern(p)),
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

/** What a label needs to know about the other labels of its layer. */
export interface LayerProfiles {
  /** Configured profile OID -> label name. */
  labelOf: ReadonlyMap<string, string>;
  /** Every label of the layer, to name the one a certificate renews on. */
  labels: Readonly<Record<string, LabelConfig>>;
  /** Names that the layer's RA and CA grants hand out: no other label issues them. */
  reserved: readonly string[];
}

/** A label that issues RA certificates or whose grants allow CA certificates. */
const issuesAuthority = (cfg: LabelConfig): boolean => cfg.ext_key_usage.includes('cmcRA') || cfg.grants.some((g) => g.allow_ca);

/** Profiles and reservations of a whole layer, from its labels' configuration. */
export function layerProfiles(labels: Record<string, LabelConfig>): LayerProfiles {
  const labelOf = new Map(Object.entries(labels).flatMap(([name, cfg]) => (cfg.profile_oid ? [[cfg.profile_oid, name] as const] : [])));
  const reserved = new Set<string>();
  for (const cfg of Object.values(labels)) {
    for (const p of cfg.registration_authorities) if (p.startsWith('cert:')) reserved.add(p.slice(5));
    for (const g of cfg.grants) {
      if (!g.allow_ca && !cfg.ext_key_usage.includes('cmcRA')) continue;
      // literal names only: `{identity}*` (an Edge CA named after its device) reserves nothing
      for (const cn of g.common_names) if (!cn.includes('*') && !cn.includes('{identity}')) reserved.add(cn);
    }
  }
  return { labelOf, labels, reserved: [...reserved] };
}

export class LabelPolicy {
  private readonly ekuOids: string[];
  private readonly grants: CompiledGrant[];
  /** Names this label never issues: configured, and what the layer's RA and CA grants name. */
  private readonly reserved: Glob[];
  readonly profileOid: string | undefined;
  private readonly declaredRas: IdentityPattern[];

  constructor(
    readonly label: string,
    private readonly cfg: LabelConfig,
    private readonly layer: LayerProfiles = { labelOf: new Map(), labels: {}, reserved: [] },
  ) {
    this.ekuOids = cfg.ext_key_usage.map((n) => EKU_NAMES[n]!);
    this.grants = cfg.grants.map(compileGrant);
    this.profileOid = cfg.profile_oid;
    this.declaredRas = cfg.registration_authorities.map((p) => new IdentityPattern(p));
    this.reserved = issuesAuthority(cfg) ? cfg.reserved_names.map((p) => new Glob(p)) : [...cfg.reserved_names, ...layer.reserved].map((p) => new Glob(p));
  }

  /** Declared a registration authority on this label (registration_authorities), whatever its EKU. */
  declaresRa(id: Identity): boolean {
    return this.declaredRas.some((p) => p.match(id) !== undefined);
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
    // an empty list narrows nothing: it would leave a certificate good for any purpose
    if (!asked?.length) return this.ekuOids;
    const extra = asked.filter((o) => !this.ekuOids.includes(o));
    if (extra.length) throw forbidden(`extended key usage ${extra.join(', ')} is not allowed on label "${this.label}"`);
    return asked;
  }

  /**
   * The grants this identity meets. A grant for RA or CA certificates is met
   * only through a pattern that names its role (cert:ra/..., cert:device/...)
   * or a Basic user: never through `*` or a role-less cert:NAME.
   */
  private grantsFor(identity: Identity): CompiledGrant[] {
    return this.grants.filter((g) => {
      const authority = g.cfg.allow_ca || this.ekuOids.includes(OID.cmcRA);
      return g.identity.some((p) => p.match(identity) !== undefined && (!authority || p.explicit));
    });
  }

  /** Reserved names: what the layer's RAs and CAs are called is not for anyone else to hold. */
  private checkReserved(csr: Csr): void {
    if (!this.reserved.length) return;
    const names = [
      ...csr.subject.flat().filter((a) => a.type === OID.commonName).map((a) => a.value),
      ...csr.subjectAltNames.filter((n) => n.type === 'dns').map((n) => n.value),
    ];
    for (const n of names) {
      if (anyMatches(this.reserved, n, '')) throw forbidden(`the name ${quote(n)} is reserved on label "${this.label}" (RA and CA names)`);
    }
  }

  /**
   * simpleenroll and serverkeygen: the identity must hold a grant that covers
   * every name in the request, and CA requests need a grant that allows them.
   */
  decideEnroll(identity: Identity, csr: Csr, o: { serverKeygen?: boolean } = {}): Decision {
    // serverkeygen: the server makes the key; the CSR's own key is ignored (RFC 7030 §4.4.1)
    if (!o.serverKeygen) this.checkKey(csr);
    this.checkReserved(csr);
    const grants = this.grantsFor(identity);
    if (grants.length === 0) throw forbidden(`${identityString(identity)} may not enroll on label "${this.label}"`);
    const wantsCa = csr.basicConstraints?.ca === true;
    const reasons: string[] = [];
    for (const g of grants) {
      const why = this.grantRefuses(g, identity, csr, wantsCa);
      if (!why) return { ...this.decision(csr, wantsCa ? (csr.basicConstraints?.pathLen ?? g.cfg.max_path_len) : undefined), approval: g.cfg.approval ?? this.cfg.approval };
      reasons.push(why);
    }
    throw forbidden(`${identityString(identity)} may not request ${quote(formatName(csr.subject) || 'an empty subject')}: ${reasons[0]}`);
  }

  /**
   * simplereenroll: names were authorized when the certificate was first issued
   * and are checked equal to it by the caller; key and extensions are checked
   * again. A certificate renews on the profile it was issued under and never
   * gains by renewing: no wider EKU, no longer life, no CA flag it did not have.
   */
  decideReenroll(csr: Csr, current: CertFields): Decision {
    this.checkKey(csr);
    const cur = current.basicConstraints;
    let d: Decision;
    if (!csr.basicConstraints?.ca) {
      if (cur?.ca) throw forbidden('a CA certificate renews as a CA (basicConstraints CA:TRUE)');
      d = this.decision(csr);
    } else {
      if (!cur?.ca) throw forbidden('a certificate that is not a CA cannot be re-enrolled as a CA');
      const pl = csr.basicConstraints.pathLen ?? cur.pathLen ?? 0;
      if (cur.pathLen !== undefined && pl > cur.pathLen) throw forbidden(`pathLen ${pl} exceeds the current certificate's ${cur.pathLen}`);
      d = this.decision(csr, pl);
    }
    // a forwarding label's parent applies its own profile to what it signs
    if (this.cfg.mode !== 'issue') return d;
    const ours = certificateProfiles(current).filter((p) => this.layer.labelOf.has(p));
    if (ours.length) {
      if (this.profileOid === undefined || !ours.includes(this.profileOid)) throw this.wrongLabel(this.layer.labelOf.get(ours[0]!)!);
      return d;
    }
    // Without a configured profile OID, a profile is what the certificate shows:
    // its role (RA or not), CA flag and EKU. A renewal keeps all three, and
    // lives no longer than the certificate it replaces.
    if (!d.ca) {
      const eku = current.extKeyUsage ?? [];
      const isRa = eku.includes(OID.cmcRA);
      if (isRa !== this.ekuOids.includes(OID.cmcRA) || eku.some((o) => !this.ekuOids.includes(o))) throw this.wrongLabel(this.labelFor(eku));
      if (eku.length) d.extKeyUsage = d.extKeyUsage.filter((o) => eku.includes(o));
      if (!d.extKeyUsage.length) throw this.wrongLabel(this.labelFor(eku));
    }
    d.maxSpanMs = current.notAfter.getTime() - current.notBefore.getTime();
    return d;
  }

  private wrongLabel(right: string | undefined) {
    return forbidden(`this certificate was issued on another profile${right ? `: renew it on label "${right}"` : ''}, not on "${this.label}"`);
  }

  /** The issuing label of this layer whose EKU set is exactly this one, if any. */
  private labelFor(eku: string[]): string | undefined {
    const key = [...eku].sort().join();
    return Object.entries(this.layer.labels).find(([, c]) => c.mode === 'issue' && c.ext_key_usage.map((n) => EKU_NAMES[n]!).sort().join() === key)?.[0];
  }

  private grantRefuses(g: CompiledGrant, id: Identity, csr: Csr, wantsCa: boolean): string | undefined {
    for (const attr of csr.subject.flat()) {
      if (attr.type === OID.commonName) {
        if (!anyMatches(g.commonNames, attr.value, id.name)) return `CN ${quote(attr.value)} is not allowed`;
      } else if (attr.type === OID.emailAddress) {
        if (!anyMatches(g.email, attr.value, id.name)) return `emailAddress ${quote(attr.value)} is not allowed`;
      } else {
        const name = (NAME_ATTR[attr.type] ?? attr.type).toUpperCase();
        const ok = g.attributes.some((a) => (a.name === '*' || a.name === name) && a.value.test(attr.value, id.name));
        if (!ok) return `subject attribute ${NAME_ATTR[attr.type] ?? attr.type}=${quote(attr.value)} is not allowed`;
      }
    }
    for (const n of csr.subjectAltNames) {
      const globs = n.type === 'dns' ? g.dns : n.type === 'ip' ? g.ip : n.type === 'email' ? g.email : n.type === 'uri' ? g.uri : undefined;
      if (!globs) return `subjectAltName of type ${n.type} is not allowed`;
      if (!anyMatches(globs, n.value, id.name)) return `subjectAltName ${n.type}:${quote(n.value).slice(1, -1)} is not allowed`;
      // RFC 6125 §6.4.3: `*.rest` parses, but names a whole set of hosts: only where a grant says so
      if (n.wildcard && !g.cfg.allow_wildcard) return `wildcard dNSName ${quote(n.value)} is not allowed`;
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
    const d: Decision = {
      extKeyUsage: caPathLen === undefined ? this.extKeyUsage(csr) : [], validityDays: labelValidityDays(this.cfg), profileOid: this.profileOid, approval: this.cfg.approval,
    };
    if (san) d.subjectAltNameDer = san.value;
    if (caPathLen !== undefined) d.ca = { pathLen: caPathLen };
    return d;
  }
}

/** The certificatePolicies OIDs of a certificate ([] when it has none or they do not parse). */
export function certificateProfiles(cert: Pick<CertFields, 'extensions'>): string[] {
  const ext = cert.extensions.find((e) => e.oid === CERTIFICATE_POLICIES);
  if (!ext) return [];
  try {
    return decodeCertificatePolicies(ext.value);
  } catch {
    return [];
  }
}
