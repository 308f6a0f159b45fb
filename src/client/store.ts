// A certificate and its key on disk, replaced as one pair that a crash cannot split.
//
// Two files cannot be renamed together, so the pair lives in an immutable
// generation directory and one symlink says which generation is current (the
// layout Kubernetes' AtomicWriter uses for secret volumes):
//
//   cert.pem -> .cert.pem.d/current/cert.pem
//   key.pem  -> <relative path to> .cert.pem.d/current/key.pem
//   .cert.pem.d/current -> g-<id>              replaced only by rename(2)
//   .cert.pem.d/g-<id>/{cert.pem,key.pem}     never modified once published
//
// Why every instant is safe:
//  1. A generation is written as `g-<id>.tmp`, both files and the directory are
//     fsynced, then it is renamed to `g-<id>`: a published generation is complete.
//  2. `current` changes by renaming a fresh symlink over it. rename(2) is atomic,
//     so `current` names the old complete generation or the new one, never a mix;
//     the directory is fsynced so the switch survives power loss.
//  3. The live paths resolve through `current`, so key and certificate always
//     come from the same generation.
//  4. The previous generation is deleted only after the switch is durable.
//  5. The live symlinks are created once. Plain files found there (written by
//     another tool or `estgw enroll`) are first adopted as a generation of their
//     own, so replacing them one by one with links keeps them a pair throughout.
//     When there was no pair, the key link is made first: a crash then leaves a
//     key without a certificate, which reads as "no certificate", never as a
//     mismatched pair.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { syncDir, writeFileAtomic } from '../util/atomic-file.js';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

const CURRENT = 'current';
const CERT = 'cert.pem';
const KEY = 'key.pem';

const PENDING_KEY = 'pending-key.pem';
const rand = () => randomBytes(6).toString('hex');
const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

async function writeSynced(path: string, data: string, mode: number): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // umask must not widen a key's mode
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

export class PairStore {
  readonly dataDir: string;

  constructor(
    readonly certPath: string,
    readonly keyPath: string,
  ) {
    this.dataDir = join(dirname(certPath), `.${basename(certPath)}.d`);
  }

  private linkTarget(live: string, file: string): string {
    return relative(dirname(live), join(this.dataDir, CURRENT, file));
  }

  private async linksAreOurs(): Promise<boolean> {
    const [c, k] = await Promise.all([readlink(this.certPath).catch(() => undefined), readlink(this.keyPath).catch(() => undefined)]);
    return c === this.linkTarget(this.certPath, CERT) && k === this.linkTarget(this.keyPath, KEY);
  }

  private async currentGeneration(): Promise<string | undefined> {
    return readlink(join(this.dataDir, CURRENT)).catch(() => undefined);
  }

  /** The pair as the live paths show it; undefined when either file is missing. */
  async read(): Promise<PemPair | undefined> {
    // Our own layout: read both files from the one generation `current` names, not through
    // two lookups a concurrent switch could fall between.
    const gen = (await this.linksAreOurs()) ? await this.currentGeneration() : undefined;
    const dir = gen === undefined ? undefined : join(this.dataDir, gen);
    const certPem = await readIfExists(dir ? join(dir, CERT) : this.certPath);
    const keyPem = await readIfExists(dir ? join(dir, KEY) : this.keyPath);
    return certPem === undefined || keyPem === undefined ? undefined : { certPem, keyPem };
  }

  /** Replaces the pair; returns once the new pair is durable and visible at the live paths. */
  async write(pair: PemPair): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
    await this.adoptPlainFiles();
    const previous = await this.currentGeneration();
    const gen = await this.publish(pair);
    await this.switchTo(gen);
    await this.ensureLinks();
    await this.prune(new Set([gen, ...(previous ? [previous] : [])]));
  }

  /**
   * The key of a request the server holds for approval (202). Kept beside the
   * generations, mode 0600, so a restart resends the CSR the operator is
   * approving instead of a new one to approve again.
   */
  async readPendingKey(): Promise<string | undefined> {
    return readFile(join(this.dataDir, PENDING_KEY), 'utf8').catch((e: unknown) => {
      if (isMissing(e)) return undefined;
      throw e;
    });
  }

  async writePendingKey(keyPem: string): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(join(this.dataDir, PENDING_KEY), keyPem, 0o600);
  }

  async clearPendingKey(): Promise<void> {
    await rm(join(this.dataDir, PENDING_KEY), { force: true });
  }

  /** Removes what an interrupted write left behind (unpublished generations, temporary links). */
  async cleanup(): Promise<void> {
    await this.prune(undefined);
    for (const live of [this.certPath, this.keyPath]) {
      const entries = await readdir(dirname(live)).catch(() => [] as string[]);
      const prefix = `.${basename(live)}.`;
      for (const e of entries) if (e.startsWith(prefix) && e.endsWith('.tmp')) await rm(join(dirname(live), e), { force: true });
    }
  }

  private async publish(pair: PemPair): Promise<string> {
    const id = `g-${Date.now().toString(36)}-${rand()}`;
    const tmp = join(this.dataDir, `${id}.tmp`);
    await mkdir(tmp, { mode: 0o755 });
    await writeSynced(join(tmp, KEY), pair.keyPem, 0o600);
    await writeSynced(join(tmp, CERT), pair.certPem, 0o644);
    await syncDir(tmp);
    await rename(tmp, join(this.dataDir, id));
    await syncDir(this.dataDir);
    return id;
  }

  private async switchTo(gen: string): Promise<void> {
    const tmp = join(this.dataDir, `${CURRENT}.${rand()}.tmp`);
    await symlink(gen, tmp);
    await rename(tmp, join(this.dataDir, CURRENT));
    await syncDir(this.dataDir);
  }

  private async ensureLinks(): Promise<void> {
    for (const [live, file] of [[this.keyPath, KEY], [this.certPath, CERT]] as const) {
      const target = this.linkTarget(live, file);
      if ((await readlink(live).catch(() => undefined)) === target) continue;
      await mkdir(dirname(live), { recursive: true });
      const tmp = join(dirname(live), `.${basename(live)}.${rand()}.tmp`);
      await symlink(target, tmp);
      await rename(tmp, live);
      await syncDir(dirname(live));
    }
  }

  private async adoptPlainFiles(): Promise<void> {
    if (await this.linksAreOurs()) return;
    const isFile = (p: string) => lstat(p).then((s) => s.isFile(), () => false);
    if (!(await isFile(this.certPath)) || !(await isFile(this.keyPath))) return;
    const certPem = await readFile(this.certPath, 'utf8');
    const keyPem = await readFile(this.keyPath, 'utf8');
    await this.switchTo(await this.publish({ certPem, keyPem }));
    await this.ensureLinks();
  }

  /** Deletes unpublished generations and temporary links, and, given `keep`, every generation not in it. */
  private async prune(keep: Set<string> | undefined): Promise<void> {
    const entries = await readdir(this.dataDir).catch(() => [] as string[]);
    const current = await this.currentGeneration();
    for (const e of entries) {
      const stale = e.endsWith('.tmp') || (keep !== undefined && e.startsWith('g-') && !keep.has(e) && e !== current);
      if (stale) await rm(join(this.dataDir, e), { recursive: true, force: true });
    }
    if (entries.length) await syncDir(this.dataDir);
  }
}
