// The demo's child processes: every layer and the edge client run as the real
// `estgw` command, exactly as a user would start them, and the demo reads
// what they print (banner on stderr, JSON log lines on stdout).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export type LogLine = Record<string, unknown> & { msg?: string };

export class DemoError extends Error {}

/** A long-running `estgw` process whose output is kept for the summary and for diagnosis. */
export class Child {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly waiters = new Set<() => void>();
  private exited: number | null | undefined;
  private readonly exit: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        this.logs.push(JSON.parse(l) as LogLine);
      } catch {
        this.stderr.push(l); // not a log line: keep it with the diagnostics
      }
      this.wake();
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      this.stderr.push(l);
      this.wake();
    });
    this.exit = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        this.exited = code ?? (signal ? -1 : null);
        this.wake();
        resolve();
      }),
    );
  }

  static start(name: string, cli: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv }): Child {
    return new Child(name, spawn(process.execPath, [cli, ...args], { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get running(): boolean {
    return this.exited === undefined;
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves with the first value `probe` returns, looking at output as it arrives. */
  async waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    const found = probe();
    if (found !== undefined) return found;
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        this.waiters.delete(check);
        clearTimeout(timer);
      };
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (!this.running) {
          done();
          reject(new DemoError(`${this.name} exited (code ${this.exited}) while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new DemoError(`${this.name}: no ${what} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** A line on stderr matching `re` (the banner), its first group. */
  waitForBanner(re: RegExp, timeoutMs: number): Promise<string> {
    return this.waitFor(`a line matching ${re}`, timeoutMs, () => {
      for (const l of this.stderr) {
        const m = re.exec(l);
        if (m) return m[1] ?? m[0];
      }
      return undefined;
    });
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  /** The last lines worth showing when something went wrong. */
  tail(n = 12): string[] {
    const logLines = this.logs.filter((l) => l.msg !== 'est').map((l) => JSON.stringify(l));
    return [...this.stderr, ...logLines].slice(-n);
  }
}

/** A one-shot `estgw` command; a non-zero exit fails the step with what it printed. */
export function runCli(cli: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { cwd: o.cwd, env: o.env, timeout: o.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new DemoError(`estgw ${args.slice(0, 2).join(' ')} failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}
