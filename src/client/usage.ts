// Usage text for `estgw` commands (the gateway's and the edge client's), written once per
// command: the overview lists them all, `estgw CMD --help` prints the one (or those under a prefix, `ca`).

export interface CommandUsage {
  /** The command words, e.g. `ca request-subca`. */
  words: string;
  /** A synopsis line starting with the words, then lines indented under it. */
  text: string;
}

/** True when the arguments ask for help: `--help` or `-h` anywhere, as CLI users expect. */
export const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

/** The commands as the overview lists them, two spaces in. */
export const overview = (commands: readonly CommandUsage[]): string => commands.map((c) => indent(c.text, '  ')).join('\n');

const indent = (text: string, by: string) => text.split('\n').map((l) => (l ? by + l : l)).join('\n');

/** `usage: estgw ...` for the command `words` names, or for every command under it; undefined if none. */
export function usageOf(commands: readonly CommandUsage[], words: readonly string[]): string | undefined {
  const w = words.join(' ');
  const exact = commands.filter((c) => c.words === w);
  const hits = exact.length ? exact : commands.filter((c) => c.words.startsWith(`${w} `));
  if (!w || hits.length === 0) return undefined;
  const lead = 'usage: estgw ';
  return `${hits.map((c, i) => (i === 0 ? lead : ' '.repeat(lead.length - 6) + 'estgw ') + indent(c.text, ' '.repeat(lead.length)).trimStart()).join('\n')}\n`;
}
