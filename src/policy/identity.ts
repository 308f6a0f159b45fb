// Who is asking, as policy sees it: how they authenticated, their name, and the
// role their certificate was issued for. Grants name identities with patterns:
//   user:GLOB         an HTTP Basic user
//   cert:ra/GLOB      a client certificate of the RA role: EKU id-kp-cmcRA from
//                     this layer's own PKI (never from a bootstrap or manufacturer CA)
//   cert:device/GLOB  any other client certificate
//   cert:GLOB         a client certificate of either role (never meets an RA or CA grant)
//   *                 everyone authenticated (never meets an RA or CA grant,
//                     nor does a user:GLOB with a `*`)
import { Glob } from './glob.js';

export type Role = 'device' | 'ra';
export const ROLES: readonly Role[] = ['device', 'ra'];

export interface Identity {
  /** `user` = HTTP Basic, `cert` = TLS client certificate. */
  kind: 'user' | 'cert';
  /** User name, or the certificate's subject CN (or whole subject when it has none). */
  name: string;
  /** `ra`: a registration authority (RFC 7030 §3.7); everything else is a device. */
  role: Role;
  /** RFC 4514 subject of the client certificate, when one authenticated. */
  certSubject?: string;
  /** Subject of the CA that issued the client certificate. */
  issuer?: string;
  /** Basic user that also authenticated, when both did. */
  user?: string;
}

export const identityString = (id: Identity): string => (id.kind === 'cert' ? `cert:${id.role}/${id.name}` : `user:${id.name}`);

/** One `identity` entry of a grant. */
export class IdentityPattern {
  private readonly kind: 'any' | 'user' | 'cert';
  /** For cert patterns: the role it names, or undefined for either. */
  readonly role: Role | undefined;
  private readonly name: Glob;

  constructor(readonly source: string) {
    if (source === '*') {
      this.kind = 'any';
      this.role = undefined;
      this.name = new Glob('*');
      return;
    }
    const m = /^(user|cert):(.+)$/.exec(source);
    if (!m) throw new Error(`identity pattern "${source}" must be *, user:NAME, cert:ra/NAME, cert:device/NAME or cert:NAME`);
    this.kind = m[1] as 'user' | 'cert';
    const qualified = this.kind === 'cert' ? /^(ra|device)\/(.+)$/.exec(m[2]!) : null;
    this.role = qualified ? (qualified[1] as Role) : undefined;
    this.name = new Glob(qualified ? qualified[2]! : m[2]!);
  }

  /**
   * Names who it is for explicitly enough to meet a grant for RA or CA
   * certificates: a certificate role, or one user by name (`user:*` would
   * hand CA certificates to whoever knows a shared bootstrap password).
   */
  get explicit(): boolean {
    return this.kind === 'user' ? !this.source.includes('*') : this.role !== undefined;
  }

  /** How this identity meets the pattern: by its certificate, by its Basic user, or not at all. */
  match(id: Identity): 'cert' | 'user' | undefined {
    if (this.kind === 'any') return id.kind;
    if (this.kind === 'cert') {
      return id.kind === 'cert' && (this.role === undefined || this.role === id.role) && this.name.test(id.name, id.name) ? 'cert' : undefined;
    }
    const user = id.kind === 'user' ? id.name : id.user;
    return user !== undefined && this.name.test(user, user) ? 'user' : undefined;
  }
}
