// How much CPU *other* processes took during a run. On a shared 2-core box a
// compile or test run next door halves the figures, so the summary says so.
// Linux /proc only; elsewhere `measure` returns undefined.
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';

interface Snapshot {
  at: number; // ms
  busy: number; // jiffies, whole machine
  own: number; // jiffies, this process + reaped children (wrk) + the gateway's process group
}

/** Fields after the `(comm)` of /proc/PID/stat, 0 = state (field 3 of proc(5)). */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

// utime stime cutime cstime are fields 14-17 of proc(5), 11-14 here
const cpuOf = (f: string[], children: boolean) =>
  Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);

function snapshot(groupIds: number[]): Snapshot | undefined {
  let cpuLine: string | undefined;
  let self: string[] | undefined;
  try {
    cpuLine = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    self = statFields('self');
  } catch {
    return undefined;
  }
  if (!cpuLine?.startsWith('cpu ') || !self) return undefined;
  const v = cpuLine.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const busy = v.slice(0, 8).reduce((a, b) => a + b, 0) - idle; // guest time is already in user
  let own = cpuOf(self, true);
  if (groupIds.length) {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const f = statFields(Number(name));
      if (f && groupIds.includes(Number(f[2]))) own += cpuOf(f, false);
    }
  }
  return { at: Date.now(), busy, own };
}

/** Starts measuring; the returned function gives other processes' share of the machine (0..1). */
export function measureForeignCpu(gatewayGroups: number[] = []): () => number | undefined {
  const a = snapshot(gatewayGroups);
  return () => {
    const b = snapshot(gatewayGroups);
    if (!a || !b || b.at <= a.at) return undefined;
    const capacity = ((b.at - a.at) / 1000) * 100 * availableParallelism(); // USER_HZ is 100 on Linux
    return Math.max(0, Math.min(1, (b.busy - a.busy - (b.own - a.own)) / capacity));
  };
}
