// Name patterns in grants: `*` matches any run of characters, `{identity}`
// stands for the requester's own name (taken literally, `*` in it included).
// Matched without regular expressions: literal pieces found left to right
// (greedy leftmost is exact for `*`-only globs), so a long value against
// `*-*-*` costs a few indexOf scans, never backtracking. Case-insensitive.

type Piece = string | typeof IDENTITY;
const IDENTITY = Symbol('identity');

export class Glob {
  /** Literal runs between the stars; `{identity}` kept as a marker until matched. */
  private readonly parts: Piece[][];

  constructor(readonly pattern: string) {
    this.parts = pattern
      .toLowerCase()
      .split('*')
      .map((seg) => seg.split('{identity}').flatMap((lit, i): Piece[] => (i === 0 ? [lit] : [IDENTITY, lit])));
  }

  test(value: string, identity: string): boolean {
    const id = identity.toLowerCase();
    const lits = this.parts.map((seg) => seg.map((p) => (p === IDENTITY ? id : p)).join(''));
    return globMatch(lits, value.toLowerCase());
  }
}

/** `lits` are the pattern split at its stars: lits[0]*lits[1]*...*lits[n]. */
function globMatch(lits: string[], v: string): boolean {
  const first = lits[0]!;
  if (lits.length === 1) return v === first;
  const last = lits.at(-1)!;
  if (v.length < first.length + last.length || !v.startsWith(first) || !v.endsWith(last)) return false;
  let pos = first.length;
  const end = v.length - last.length;
  for (let i = 1; i < lits.length - 1; i++) {
    const lit = lits[i]!;
    const at = v.indexOf(lit, pos);
    if (at < 0 || at + lit.length > end) return false;
    pos = at + lit.length;
  }
  return true;
}

export const anyMatches = (globs: Glob[], value: string, identity: string) => globs.some((g) => g.test(value, identity));
