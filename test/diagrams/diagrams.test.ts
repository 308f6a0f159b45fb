// Static checks of diagrams/: the committed SVGs are renders of the current
// .mmd sources, and the diagrams still say what the code and the hierarchy
// configs say. Nothing is rendered here (CI has no browser); after editing a
// diagram, or code a diagram shows, run scripts/render-diagrams.sh.
// Every check is a function returning its problems, so that the last test can
// show each one failing on a broken copy of a diagram.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { CLIENT_CERT_HEADER } from '../../src/issuer/forward-issuer.js';
import { NETSCAPE_COMMENT } from '../../src/issuer/local-issuer.js';
import { CERTS_ONLY } from '../../src/server/middleware/respond.js';

// dist/test/diagrams -> repository root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DIAGRAMS = join(ROOT, 'diagrams');
const SRC = join(ROOT, 'src');
const HIERARCHY = join(ROOT, 'config/hierarchy');
const RENDER = 'run scripts/render-diagrams.sh';

type Obj = Record<string, any>;
const read = (p: string) => readFileSync(p, 'utf8');
const mmd = (name: string) => read(join(DIAGRAMS, `${name}.mmd`));
const svg = (name: string) => read(join(DIAGRAMS, `${name}.svg`));
const toml = (name: string): Obj => parseToml(read(join(HIERARCHY, name))) as Obj;
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// ---- reading the diagrams ----

/** Mermaid source without front matter and %% comments; quoted labels kept. */
const body = (text: string) => text.replace(/^---\n[\s\S]*?\n---\n/, '').replace(/^\s*%%.*$/gm, '');
/** The label of flowchart node `id`, markdown backticks and bold marks removed. */
function nodeLabel(text: string, id: string): string | undefined {
  const m = new RegExp(`^\\s*${id}\\s*(?:\\[\\(|\\(\\[|\\[\\[|\\{\\{|\\[|\\(|\\{)\\s*"([^"]*)"`, 'm').exec(body(text));
  return m?.[1]?.replace(/[`*]/g, '').replace(/\s+/g, ' ').trim();
}
interface Edge { from: string; to: string; dotted: boolean; arrow: boolean; label: string }
/** Flowchart edges, with or without a quoted label, in source order. */
function flowEdges(text: string): Edge[] {
  const re = /^[ \t]*(\w+)[ \t]+(?:(--|-\.)[ \t]*"([^"]*)"[ \t]*(-->|\.->|\.-|---)|(-->|-\.->|---|-\.-))[ \t]+(\w+)[ \t]*$/gm;
  return [...body(text).matchAll(re)].map((m) => {
    const arrow = (m[4] ?? m[5])!;
    return { from: m[1]!, to: m[6]!, dotted: (m[2] ?? m[5])!.includes('.'), arrow: arrow.endsWith('>'), label: (m[3] ?? '').replace(/[`*]/g, '').replace(/\s+/g, ' ').trim() };
  });
}
/** The visible text of an SVG, one space between text runs. */
function svgText(s: string): string {
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
  return s
    .replace(/<style[\s\S]*?<\/style>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&(#x?[0-9a-f]+|\w+);/gi, (all, e: string) =>
      e.startsWith('#') ? String.fromCodePoint(parseInt(e.slice(e[1] === 'x' ? 2 : 1), e[1] === 'x' ? 16 : 10)) : (entities[e] ?? all))
    .replace(/\s+/g, ' ');
}
/** Mermaid's #59; is how a diagram writes a semicolon. */
const unescapeMmd = (s: string) => s.replace(/#59;/g, ';');

// ---- the code, as the diagrams need it ----

/** src/ modules: directories by name, files directly in src/ by file name. */
const moduleOf = (file: string) => {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.js$/, '.ts');
};
/** Node id of a module in module-map.mmd: `errors.ts` is drawn as `errors`. */
const nodeId = (module: string) => module.replace(/\.ts$/, '');

/** Import edges between src/ modules; `typeOnly` when every import of the pair is erased at run time. */
function importEdges(): Map<string, { from: string; to: string; typeOnly: boolean }> {
  const edges = new Map<string, { from: string; to: string; typeOnly: boolean }>();
  // static imports and re-exports; import('...') (a type unless awaited or .then'd); bare side-effect imports
  const re = /\b(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+'(\.[^']+)'|(\bawait\s+)?\bimport\(\s*'(\.[^']+)'\s*\)(\.then\b)?|^\s*import\s+'(\.[^']+)'/gm;
  for (const file of walk(SRC).filter((f) => f.endsWith('.ts'))) {
    for (const m of read(file).matchAll(re)) {
      const spec = m[3] ?? m[5] ?? m[7]!;
      const names = (m[2] ?? '').trim();
      const allTypes = /^\{[^}]*\}$/.test(names) && names.slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '));
      const typeImport = m[5] !== undefined && m[4] === undefined && m[6] === undefined;
      const typeOnly = typeImport || m[1] !== undefined || allTypes;
      const from = moduleOf(file);
      const to = moduleOf(resolve(dirname(file), spec));
      if (from === to) continue;
      const key = `${nodeId(from)} -> ${nodeId(to)}`;
      edges.set(key, { from: nodeId(from), to: nodeId(to), typeOnly: (edges.get(key)?.typeOnly ?? true) && typeOnly });
    }
  }
  return edges;
}
const srcModules = () => readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory() || (n.endsWith('.ts') && !n.endsWith('.d.ts')));

/**
 * The intended direction of imports, top to bottom (cli → server/client →
 * issuer/policy/cache → pki/est); an import to a higher tier is drawn red.
 */
const TIERS: Record<string, number> = {
  cli: 0, index: 0,
  server: 1, client: 1,
  issuer: 2, ledger: 2, approval: 2, policy: 2, cache: 2, config: 2,
  transport: 2.5,
  auth: 3, pki: 3, est: 3, util: 3, errors: 3,
};
const RED = '#b00020';

// ---- the checks ----

function moduleMapProblems(text: string, actual: ReturnType<typeof importEdges>, modules: string[]): string[] {
  const problems: string[] = [];
  const ids = modules.map(nodeId);
  for (const id of ids) if (nodeLabel(text, id) === undefined) problems.push(`no node for src/${modules[ids.indexOf(id)]}`);
  for (const id of ids) if (TIERS[id] === undefined) problems.push(`src module ${id} has no tier in TIERS of this test`);
  for (const m of body(text).replace(/"[^"]*"/g, '""').matchAll(/^\s*(\w+)\s*[[({]/gm)) if (!ids.includes(m[1]!)) problems.push(`node ${m[1]} is not a src/ module`);
  // every line that looks like an edge must be one the parser understands
  const lines = body(text).replace(/"[^"]*"/g, '""').split('\n');
  for (const l of lines) if (/--|-\./.test(l) && !/^\s*\w+\s+(-->|-\.->)\s+\w+\s*$/.test(l)) problems.push(`unreadable edge line: ${l.trim()}`);
  const drawn = flowEdges(text);
  const seen = new Set<string>();
  for (const e of drawn) {
    const key = `${e.from} -> ${e.to}`;
    if (seen.has(key)) problems.push(`edge drawn twice: ${key}`);
    seen.add(key);
    const real = actual.get(key);
    if (!real) problems.push(`extra edge: ${key} (no such import in src/)`);
    else if (real.typeOnly !== e.dotted) problems.push(`edge ${key} must be ${real.typeOnly ? 'dotted (type-only imports)' : 'solid (a run-time import)'}`);
  }
  for (const key of actual.keys()) if (!seen.has(key)) problems.push(`missing edge: ${key}`);
  // red edges: exactly those that import a higher tier
  const red = new Set<number>();
  for (const m of body(text).matchAll(/^\s*linkStyle\s+([\d,\s]+?)\s+(.*)$/gm)) {
    if (m[2]!.includes(RED)) for (const i of m[1]!.split(',')) red.add(Number(i));
  }
  drawn.forEach((e, i) => {
    const upward = (TIERS[e.to] ?? 0) < (TIERS[e.from] ?? 0);
    if (upward !== red.has(i)) problems.push(`edge ${i} (${e.from} -> ${e.to}) ${upward ? 'goes against the intended direction and must be red' : 'must not be red'}`);
  });
  return problems;
}

interface Layer { id: 'top' | 'middle' | 'bottom'; name: string; level: string; cfg: Obj }
const layers = (): Layer[] => [
  { id: 'top', name: 'Enterprise', level: 'L4', cfg: toml('top.toml') },
  { id: 'middle', name: 'Operations', level: 'L3', cfg: toml('middle.toml') },
  { id: 'bottom', name: 'Supervisory', level: 'L2', cfg: toml('bottom.toml') },
];
const hostPort = (url: string) => new URL(url).host;
const grantedCn = (cfg: Obj) => (cfg.labels.default.grants as Obj[]).map((g) => String(g.identity)).find((i) => i.startsWith('cert:'))?.replace(/^cert:(?:(?:ra|device)\/)?/, '');

function topologyProblems(text: string, ls: Layer[], edge: Obj): string[] {
  const problems: string[] = [];
  const byId = new Map(ls.map((l) => [l.id, l]));
  for (const l of ls) {
    const label = nodeLabel(text, l.id) ?? '';
    const listen = String(l.cfg.server.listen);
    if (!label.includes(listen)) problems.push(`node ${l.id} does not show listen = "${listen}" of ${l.id}.toml`);
    if (!label.includes(l.name) || !label.includes(l.level)) problems.push(`node ${l.id} is not named ${l.name} ${l.level}`);
  }
  const islandDays = byId.get('bottom')!.cfg.labels.default.cert_days;
  if (!(nodeLabel(text, 'bottom') ?? '').includes(`${islandDays}-day`)) problems.push(`node bottom does not say it issues ${islandDays}-day certificates islanded`);
  // arrows only upward, each to the parent the configuration really calls
  const parent = { client: 'bottom', bottom: 'middle', middle: 'top' } as const;
  const arrows = flowEdges(text).filter((e) => e.arrow);
  const want = Object.entries(parent).map(([from, to]) => `${from} -> ${to}`);
  const got = arrows.map((e) => `${e.from} -> ${e.to}`);
  if (JSON.stringify([...new Set(got)].sort()) !== JSON.stringify(want.sort())) problems.push(`arrows must be exactly ${want.join(', ')}; found ${got.join(', ')}`);
  for (const l of ls.filter((x) => x.id !== 'top')) {
    const up = byId.get(parent[l.id as 'bottom' | 'middle'])!;
    const urls = [
      ...Object.values(l.cfg.labels as Obj).flatMap((lc: Obj) => (lc.upstream ? [String(lc.upstream.url)] : [])),
      ...Object.values((l.cfg.cas ?? {}) as Obj).flatMap((ca: Obj) => (ca.request ? [String(ca.request.url)] : [])),
    ];
    for (const u of urls) if (hostPort(u) !== up.cfg.server.listen) problems.push(`${l.id}.toml reaches ${u}, not its parent ${up.id} (${up.cfg.server.listen})`);
  }
  if (hostPort(String(edge.defaults.url)) !== byId.get('bottom')!.cfg.server.listen) problems.push('edge-client.toml does not enroll at the bottom layer');
  // what each hop presents and trusts, as the configs say
  const labelOf = (from: string, to: string) => arrows.find((e) => e.from === from && e.to === to)?.label ?? '';
  const hop = (from: string, to: string, words: string[]) => {
    for (const w of words) if (!labelOf(from, to).includes(w)) problems.push(`arrow ${from} -> ${to} does not say "${w}"`);
  };
  hop('client', 'bottom', [String(edge.defaults.username), basename(String(edge.defaults.trust))]);
  hop('bottom', 'middle', [grantedCn(byId.get('middle')!.cfg) ?? '(no cert grant in middle.toml)', basename(String(byId.get('bottom')!.cfg.labels.default.upstream.trust)), 'cmcRA']);
  hop('middle', 'top', [grantedCn(byId.get('top')!.cfg) ?? '(no cert grant in top.toml)', basename(String(byId.get('middle')!.cfg.labels.default.upstream.trust)), 'cmcRA']);
  const prefix = String(byId.get('middle')!.cfg.redis?.key_prefix ?? '(no [redis] in middle.toml)');
  if (!(nodeLabel(text, 'redis') ?? '').includes(prefix)) problems.push(`the Redis node does not show key_prefix ${prefix}`);
  return problems;
}

interface ClientCode { credentials: string[]; results: string[]; statusFields: string[]; defined: Set<string>; text: string }
function clientCode(): ClientCode {
  const files = [...walk(join(SRC, 'client')), ...walk(join(SRC, 'util'))].filter((f) => f.endsWith('.ts'));
  const text = files.map(read).join('\n');
  const union = (re: RegExp, where: string) => {
    const m = re.exec(text);
    if (!m) throw new Error(`cannot find ${where} in src/client`);
    return [...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]!);
  };
  const defined = new Set<string>();
  const defs = [
    /\bfunction\s+([A-Za-z_]\w*)/g,
    /^[ \t]*(?:(?:public|private|protected|static|async|override)\s+)*([A-Za-z_]\w*)\s*(?:<[^>\n]*>)?\([^)\n]*\)\s*(?::\s*[^{\n]+)?\{/gm,
    /^[ \t]*(?:(?:public|private|protected|static|async|override)\s+)+([A-Za-z_]\w*)\s*(?:<[^>\n]*>)?\(/gm,
    /\b(?:const|let)\s+([A-Za-z_]\w*)\s*(?::[^=\n]+)?=\s*(?:async\s+)?(?:\([^)]*\)|\w+)\s*=>/g,
  ];
  for (const re of defs) for (const m of text.matchAll(re)) defined.add(m[1]!);
  const status = /export interface CertStatus \{([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
  return {
    credentials: union(/export type Credential = ([^;]+);/, 'type Credential'),
    results: union(/attempt\(cert: string, result: ([^)]+)\)/, 'ClientMetrics.attempt'),
    statusFields: [...status.matchAll(/^\s*(\w+)\??:/gm)].map((m) => m[1]!),
    defined,
    text,
  };
}

function statesProblems(text: string, code: ClientCode): string[] {
  const problems: string[] = [];
  const src = body(text);
  // the ladder's rungs are the Credential values, no more and no fewer
  const ladder = /state\s+"[^"]*"\s+as\s+ladder\s*\{([\s\S]*?)\n\s*\}/.exec(src)?.[1];
  if (!ladder) problems.push('no composite state "ladder"');
  const rungs = [...(ladder ?? '').matchAll(/state\s+"[^"]*"\s+as\s+(\w+)/g)].map((m) => m[1]!);
  if (JSON.stringify([...rungs].sort()) !== JSON.stringify([...code.credentials].sort())) {
    problems.push(`ladder states ${rungs.join(', ')} are not renew.ts's Credential values ${code.credentials.join(', ')}`);
  }
  // every function the diagram names exists in src/client or src/util
  for (const m of src.matchAll(/\b([A-Za-z_]\w*)\(\)/g)) if (!code.defined.has(m[1]!)) problems.push(`${m[1]}() is not defined in src/client or src/util`);
  for (const m of src.matchAll(/\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b/g)) if (!code.text.includes(m[1]!)) problems.push(`${m[1]} does not occur in src/client or src/util`);
  // the metrics outcomes, both ways
  const results = [...src.matchAll(/\bmetrics (\w+)/g)].map((m) => m[1]!);
  if (JSON.stringify([...new Set(results)].sort()) !== JSON.stringify([...code.results].sort())) problems.push(`metrics outcomes ${results.join(', ')} are not ${code.results.join(', ')}`);
  // what writeStatus() writes: fields of CertStatus
  const fields = [...src.matchAll(/^\s*writeStatus\s*:\s*(.*)$/gm)].map((m) => m[1]!).find((l) => l.includes(','))?.split(/,\s*/) ?? [];
  if (fields.length === 0) problems.push('writeStatus lists no status fields');
  for (const f of fields) if (!code.statusFields.includes(f.trim())) problems.push(`status field ${f.trim()} is not in CertStatus (src/client/status.ts)`);
  return problems;
}

interface ServerCode { chains: Record<'simpleenroll' | 'simplereenroll', string[]>; middleware: string[]; islandKinds: string[]; errorKinds: string[]; schema: string }
function serverCode(): ServerCode {
  const routes = read(join(SRC, 'server/routes.ts'));
  const chain = (op: string) => {
    const m = new RegExp(`\\b${op}: \\{[^}]*chain: \\[([^\\]]*)\\]`).exec(routes);
    if (!m) throw new Error(`no ${op} chain in src/server/routes.ts`);
    return m[1]!.split(',').map((s) => s.trim().replace(/\(.*$/, '')).filter(Boolean);
  };
  const all = [...routes.matchAll(/chain: \[([^\]]*)\]/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim().replace(/\(.*$/, ''))).filter(Boolean);
  const fallback = read(join(SRC, 'issuer/fallback-issuer.ts'));
  const errors = read(join(SRC, 'errors.ts'));
  return {
    chains: { simpleenroll: chain('simpleenroll'), simplereenroll: chain('simplereenroll') },
    // readBody's `body` is too common a word to look for
    middleware: [...new Set(all)].filter((m) => m !== 'body'),
    islandKinds: [...(/const ISLAND_KINDS[^=]*=\s*\[([^\]]*)\]/.exec(fallback)?.[1] ?? '').matchAll(/'(\w+)'/g)].map((m) => m[1]!),
    errorKinds: [...(/export type EstErrorKind =([^;]+);/.exec(errors)?.[1] ?? '').matchAll(/'(\w+)'/g)].map((m) => m[1]!),
    schema: read(join(SRC, 'config/schema.ts')),
  };
}

/** The anchor each hop verifies its parent with, as config/hierarchy says. */
const hopTrust = (ls: Layer[], edge: Obj) => ({
  'D->>B': basename(String(edge.defaults.trust)),
  'B->>M': basename(String(ls.find((l) => l.id === 'bottom')!.cfg.labels.default.upstream.trust)),
  'M->>T': basename(String(ls.find((l) => l.id === 'middle')!.cfg.labels.default.upstream.trust)),
});

/** The shown middleware of each operation are that operation's chain in routes.ts; `body` and the responder are left out. */
function enrollProblems(text: string, code: ServerCode, trust: Record<string, string>, top: Obj): string[] {
  const problems: string[] = [];
  const src = unescapeMmd(body(text));
  for (const [hop, file] of Object.entries(trust)) {
    const first = src.split('\n').find((l) => l.trim().startsWith(`${hop}:`)) ?? '';
    if (!first.includes(`trusts ${file}`)) problems.push(`the first ${hop} message does not say "trusts ${file}"`);
  }
  const at = src.indexOf('Note over D,T: simplereenroll');
  if (at < 0) return ['no "Note over D,T: simplereenroll" section'];
  const sections = { simpleenroll: src.slice(0, at), simplereenroll: src.slice(at) };
  for (const [op, part] of Object.entries(sections) as Array<[keyof typeof sections, string]>) {
    const chain = code.chains[op];
    for (const mw of chain.filter((m) => m !== 'body' && !m.startsWith('issue'))) if (!part.includes(mw)) problems.push(`${op}: ${mw} of routes.ts is not shown`);
    for (const mw of code.middleware) if (new RegExp(`\\b${mw}\\b`).test(part) && !chain.includes(mw)) problems.push(`${op}: ${mw} is shown but not in its chain in routes.ts`);
  }
  if (!sections.simplereenroll.includes(`${CLIENT_CERT_HEADER}:`)) problems.push(`simplereenroll does not carry the ${CLIENT_CERT_HEADER} header`);
  if (sections.simpleenroll.includes(CLIENT_CERT_HEADER)) problems.push(`simpleenroll shows a ${CLIENT_CERT_HEADER} header`);
  if (!src.includes(CERTS_ONLY)) problems.push(`the answer is not shown as ${CERTS_ONLY}`);
  if (!src.includes(`cert_days ${top.labels.default.cert_days}`)) problems.push('the top\'s cert_days differ from top.toml');
  return problems;
}

function islandProblems(text: string, code: ServerCode, bottom: Obj): string[] {
  const problems: string[] = [];
  const raw = /^\s*island\s*\["([^"]*)"\]/m.exec(body(text))?.[1] ?? '';
  const bold = [...raw.matchAll(/\*\*(\w+)\*\*/g)].map((m) => m[1]!).filter((w) => code.errorKinds.includes(w));
  if (JSON.stringify([...bold].sort()) !== JSON.stringify([...code.islandKinds].sort())) problems.push(`island kinds shown ${bold.join(', ')} are not ISLAND_KINDS ${code.islandKinds.join(', ')}`);
  if (!(nodeLabel(text, 'local') ?? '').includes(NETSCAPE_COMMENT)) problems.push(`local issuance does not show the Netscape comment ${NETSCAPE_COMMENT}`);
  const up = bottom.labels.default.upstream as Obj;
  if (!(nodeLabel(text, 'fwd') ?? '').includes(`connect_timeout ${up.connect_timeout} s · timeout ${up.timeout} s`)) problems.push('ForwardIssuer timeouts differ from bottom.toml');
  if (!(nodeLabel(text, 'local') ?? '').includes(`cert_days ${bottom.labels.default.cert_days}`)) problems.push('islanded cert_days differ from bottom.toml');
  const defaultOf = (key: string) => {
    const m = new RegExp(`${key}: z\\.number\\(\\)[^\\n]*?\\.default\\(([\\d\\s*]+)\\)`).exec(code.schema);
    return m ? m[1]!.split('*').reduce((a, b) => a * Number(b), 1) : NaN;
  };
  const shown = (key: string, unit: 's' | 'd') => {
    const m = new RegExp(`${key} \\(default (\\d+) ${unit}\\)`).exec(text);
    return m ? Number(m[1]) * (unit === 'd' ? 86400 : 1) : NaN;
  };
  if (shown('cacerts_refresh', 's') !== defaultOf('cacerts_refresh')) problems.push('cacerts_refresh default differs from src/config/schema.ts');
  if (shown('cacerts_max_stale', 'd') !== defaultOf('cacerts_max_stale')) problems.push('cacerts_max_stale default differs from src/config/schema.ts');
  return problems;
}

/** Words each rendered diagram must show: a light check that the SVG holds the diagram. */
const WORDS: Record<string, string[]> = {
  topology: ['Enterprise', 'Operations', 'Supervisory', 'IoT Edge', '127.0.0.1:9443', '127.0.0.1:9444', '127.0.0.1:9445', 'bottom-ra', 'middle-ra', 'Redis'],
  'enroll-two-hops': ['simpleenroll', 'simplereenroll', 'Client-Cert', 'certs-only', 'cmcRA', 'verifyCsr', 'LocalIssuer'],
  'islanded-fallback': ['FallbackIssuer', 'unavailable', 'upstreamTimeout', 'Netscape comment', 'islanded', 'cacerts_max_stale'],
  'client-renewal-states': ['planRungs()', 'current', 'identity', 'bootstrap', 'none', 'retryDelay()', 'PairStore.write()', 'writeStatus()'],
  'module-map': [...srcModules().map((m) => (m.endsWith('.ts') ? m : `${m}/`))],
};

// ---- the tests ----

const names = () => readdirSync(DIAGRAMS).filter((n) => /\.(mmd|svg)$/.test(n));

test('every .mmd has its .svg beside it, and every .svg its .mmd', (t) => {
  const files = new Set(names());
  t.true([...files].some((f) => f.endsWith('.mmd')), 'no diagrams');
  for (const f of files) {
    const other = f.endsWith('.mmd') ? f.replace(/\.mmd$/, '.svg') : f.replace(/\.svg$/, '.mmd');
    t.true(files.has(other), `diagrams/${f} has no diagrams/${other}${f.endsWith('.mmd') ? `: ${RENDER}` : ''}`);
  }
});

test('every SVG is the render of its current source (source-sha256 stamp)', (t) => {
  for (const f of names().filter((n) => n.endsWith('.mmd') && existsSync(join(DIAGRAMS, n.replace(/\.mmd$/, '.svg'))))) {
    const name = f.replace(/\.mmd$/, '');
    const stamp = /^(?:<\?xml[^>]*>\s*)?<svg\b[^>]*>\s*<!-- source-sha256: ([0-9a-f]{64}) -->/.exec(svg(name));
    t.truthy(stamp, `diagrams/${name}.svg has no source-sha256 comment after <svg ...>: ${RENDER} diagrams/${f}`);
    t.is(stamp?.[1], sha256(readFileSync(join(DIAGRAMS, f))), `diagrams/${name}.svg is stale: ${RENDER} diagrams/${f}`);
  }
});

test('every SVG is an <svg> document showing its diagram\'s main words', (t) => {
  for (const f of names().filter((n) => n.endsWith('.svg'))) {
    const name = f.replace(/\.svg$/, '');
    const s = svg(name);
    t.regex(s, /^(?:<\?xml[^>]*>\s*)?<svg\b[\s\S]*<\/svg>\s*$/, `diagrams/${f} is not an SVG document`);
    const words = WORDS[name];
    t.truthy(words, `diagrams/${f}: add its main words to WORDS in this test`);
    const text = svgText(s);
    for (const w of words ?? []) t.true(text.includes(w), `diagrams/${f} does not show "${w}": ${RENDER}`);
  }
});

test('module-map: every src/ module, and exactly the import edges the code has', (t) => {
  t.deepEqual(moduleMapProblems(mmd('module-map'), importEdges(), srcModules()), []);
});

test('topology: ports, layer names, parents and credentials agree with config/hierarchy', (t) => {
  t.deepEqual(topologyProblems(mmd('topology'), layers(), toml('edge-client.toml')), []);
});

test('enroll-two-hops: the middleware chains of routes.ts, Client-Cert and certs-only', (t) => {
  t.deepEqual(enrollProblems(mmd('enroll-two-hops'), serverCode(), hopTrust(layers(), toml('edge-client.toml')), toml('top.toml')), []);
});

test('islanded-fallback: ISLAND_KINDS, the islanded mark, bottom.toml and the cache defaults', (t) => {
  t.deepEqual(islandProblems(mmd('islanded-fallback'), serverCode(), toml('bottom.toml')), []);
});

test('client-renewal-states: rungs, functions, metrics outcomes and status fields of src/client', (t) => {
  t.deepEqual(statesProblems(mmd('client-renewal-states'), clientCode()), []);
});

test('each check fails on a broken diagram', (t) => {
  const edges = importEdges();
  const mm = mmd('module-map');
  t.true(moduleMapProblems(mm.replace(/^\s*cache --> util\s*$/m, ''), edges, srcModules()).some((p) => p.startsWith('missing edge: cache -> util')));
  t.true(moduleMapProblems(`${mm}\n  est --> client\n`, edges, srcModules()).some((p) => p.startsWith('extra edge: est -> client')));
  t.true(moduleMapProblems(mm.replace(/^\s*pki --> est\s*$/m, '  pki -.-> est'), edges, srcModules()).some((p) => p.includes('pki -> est must be solid')));
  t.true(moduleMapProblems(mm.replace(/^\s*cache\[/m, '  cash['), edges, srcModules()).some((p) => p.includes('no node for src/cache')));
  t.true(moduleMapProblems(`${mm}\n  gone["gone/"]\n`, edges, srcModules()).some((p) => p.includes('node gone is not a src/ module')));
  t.true(moduleMapProblems(`${mm}\n  linkStyle 0 stroke:#b00020\n`, edges, srcModules()).some((p) => p.includes('must not be red')));
  t.true(moduleMapProblems(`${mm}\n  est --> cache\n`, new Map([...edges, ['est -> cache', { from: 'est', to: 'cache', typeOnly: false }]]), srcModules()).some((p) => p.includes('must be red')));

  const topo = mmd('topology');
  t.true(topologyProblems(topo.replace('127.0.0.1:9444', '127.0.0.1:9999'), layers(), toml('edge-client.toml')).some((p) => p.includes('listen')));
  t.true(topologyProblems(`${topo}\n  bottom --> top\n`, layers(), toml('edge-client.toml')).some((p) => p.startsWith('arrows must be')));
  t.true(topologyProblems(topo.replace(/\*\*bottom-ra\*\*/, 'someone'), layers(), toml('edge-client.toml')).some((p) => p.includes('bottom-ra')));

  const seq = mmd('enroll-two-hops');
  const trust = hopTrust(layers(), toml('edge-client.toml'));
  t.true(enrollProblems(seq.replace(/checkReenrollIdentity/g, 'checkIdentity'), serverCode(), trust, toml('top.toml')).some((p) => p.includes('checkReenrollIdentity')));
  t.true(enrollProblems(seq.replace('→ checkPop → FallbackIssuer: issued', '→ applyPolicy → FallbackIssuer: issued'), serverCode(), trust, toml('top.toml')).some((p) => p.includes('applyPolicy is shown')));
  t.true(enrollProblems(seq.replace('trusts plant-root.pem', 'trusts bottom-tls.pem'), serverCode(), trust, toml('top.toml')).some((p) => p.includes('D->>B')));

  const island = mmd('islanded-fallback');
  t.true(islandProblems(island.replace('**upstreamTimeout**', '**badGateway**'), serverCode(), toml('bottom.toml')).some((p) => p.includes('ISLAND_KINDS')));
  t.true(islandProblems(island.replace('default 7 d', 'default 3 d'), serverCode(), toml('bottom.toml')).some((p) => p.includes('cacerts_max_stale')));

  const states = mmd('client-renewal-states');
  const code = clientCode();
  t.true(statesProblems(states.replace('as bootstrap', 'as fallback'), code).some((p) => p.includes('Credential')));
  t.true(statesProblems(states.replace('retryDelay()', 'backoff()'), code).some((p) => p.includes('backoff()')));
  t.true(statesProblems(states.replace('lastSuccess, lastError', 'lastSuccess, state'), code).some((p) => p.includes('status field state')));
  t.true(statesProblems(states.replace('metrics pending', 'metrics held'), code).some((p) => p.includes('metrics outcomes')));

  t.false(svgText(svg('topology')).includes('127.0.0.1:9999'));
});
