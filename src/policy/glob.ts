// Name patterns in grants: `*` matches anything, `{identity}` stands for the
// requester's own name. Compiled once; patterns with `{identity}` once per name.
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Glob {
  private readonly fixed: RegExp | undefined;
  private readonly perIdentity = new Map<string, RegExp>();

  constructor(readonly pattern: string) {
    if (!pattern.includes('{identity}')) this.fixed = Glob.compile(pattern, '');
  }

  private static compile(pattern: string, identity: string): RegExp {
    const parts = pattern.split('{identity}').map((p) => p.split('*').map(escape).join('.*'));
    return new RegExp(`^${parts.join(escape(identity))}$`, 'i');
  }

  test(value: string, identity: string): boolean {
    if (this.fixed) return this.fixed.test(value);
    let re = this.perIdentity.get(identity);
    if (!re) {
      if (this.perIdentity.size > 1000) this.perIdentity.clear();
      this.perIdentity.set(identity, (re = Glob.compile(this.pattern, identity)));
    }
    return re.test(value);
  }
}

export const anyMatches = (globs: Glob[], value: string, identity: string) => globs.some((g) => g.test(value, identity));
