// Reads a V8 .cpuprofile (node --cpu-prof) and prints where the time went:
// self time by function, and by file / package.
//   node dist/bench/profile-summary.js FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Row {
  key: string;
  selfMs: number;
  totalMs: number;
}

export interface Summary {
  totalMs: number;
  byFunction: Row[];
  byFile: Row[];
}

/** Where a frame's code lives: our source, a package, node internals, or V8's pseudo-frames. */
function fileOf(url: string, root: string): string {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `pkg:${rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  return relative(root, path);
}

export function summarise(p: CpuProfile, root = process.cwd()): Summary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // a sample lasts until the next one; timeDeltas[i] is the gap before sample i
  const durUs = p.samples.map((_, i) => p.timeDeltas[i + 1] ?? 0);
  const fnKey = (n: ProfileNode) => {
    const f = n.callFrame;
    const name = f.functionName || '(anonymous)';
    return f.url ? `${name} ${fileOf(f.url, root)}:${f.lineNumber + 1}` : name;
  };
  const fnSelf = new Map<string, number>();
  const fnTotal = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  const fileTotal = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let totalUs = 0;
  p.samples.forEach((id, i) => {
    const d = durUs[i]!;
    totalUs += d;
    const leaf = byId.get(id);
    if (!leaf) return;
    add(fnSelf, fnKey(leaf), d);
    add(fileSelf, fileOf(leaf.callFrame.url, root), d);
    // inclusive time: each function (file) once per sample, however deep it recurses
    const seen = new Set<string>();
    const once = (m: Map<string, number>, k: string) => {
      if (!seen.has(k)) {
        seen.add(k);
        add(m, k, d);
      }
    };
    for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
      once(fnTotal, fnKey(n));
      once(fileTotal, `file\0${fileOf(n.callFrame.url, root)}`);
    }
  });
  const rows = (m: Map<string, number>, total: (k: string) => number | undefined): Row[] =>
    [...m].map(([key, us]) => ({ key, selfMs: us / 1000, totalMs: (total(key) ?? us) / 1000 })).sort((a, b) => b.selfMs - a.selfMs);
  return {
    totalMs: totalUs / 1000,
    byFunction: rows(fnSelf, (k) => fnTotal.get(k)),
    byFile: rows(fileSelf, (k) => fileTotal.get(`file\0${k}`)),
  };
}

export function formatSummary(s: Summary, top = 25): string {
  const pct = (ms: number) => `${((100 * ms) / s.totalMs).toFixed(1).padStart(5)}%`;
  // total: samples with the function (file) anywhere on the stack; misleading for
  // async functions, whose callee's synchronous part runs on their stack
  const line = (r: Row) => `${pct(r.selfMs)} ${r.selfMs.toFixed(0).padStart(7)} ms  (total ${pct(r.totalMs).trim()})  ${r.key}`;
  return [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s sampled`,
    `top ${top} functions by self time:`,
    ...s.byFunction.slice(0, top).map((r) => `  ${line(r)}`),
    `top ${top} files / packages by self time:`,
    ...s.byFile.slice(0, top).map((r) => `  ${line(r)}`),
  ].join('\n');
}

// CLI only when run directly, not when bench/profile.ts imports it
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (positionals.length === 0) {
    console.error('usage: node dist/bench/profile-summary.js FILE.cpuprofile [--top N]');
    process.exit(2);
  }
  for (const f of positionals) {
    console.log(`== ${f}`);
    console.log(formatSummary(summarise(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile), Number(values.top)));
  }
}
