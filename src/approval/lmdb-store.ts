// Held requests in LMDB (lmdb-js) at DATA_DIR/approvals, for a layer without
// Redis: the gateway (and its node:cluster workers) and `estgw requests` open
// it at once; every state change is one write transaction, so a claim is
// atomic across processes.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ApprovalState, type ApprovalStore, type HeldRequest, type Transition, ApprovalStoreError } from './store.js';

export const approvalsPath = (dataDir: string) => join(dataDir, 'approvals');

export class LmdbApprovalStore implements ApprovalStore {
  readonly kind = 'lmdb';
  private readonly env: RootDatabase;
  private readonly requests: Database<HeldRequest, string>;
  /** request key -> id */
  private readonly keys: Database<string, string>;
  private closed = false;

  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    this.env = open({ path, maxDbs: 4 });
    this.requests = this.env.openDB({ name: 'requests' });
    this.keys = this.env.openDB({ name: 'keys' });
  }

  private check(): void {
    if (this.closed) throw new ApprovalStoreError('the approval store is closed');
  }

  async get(id: string): Promise<HeldRequest | undefined> {
    this.check();
    return this.requests.get(id);
  }

  async byKey(key: string): Promise<HeldRequest | undefined> {
    this.check();
    const id = this.keys.get(key);
    return id === undefined ? undefined : this.requests.get(id);
  }

  async add(r: HeldRequest, replacing?: string): Promise<HeldRequest> {
    this.check();
    return this.env.transactionSync(() => {
      const current = this.keys.get(r.key);
      const existing = current === undefined || current === replacing ? undefined : this.requests.get(current);
      if (existing) return existing;
      this.requests.put(r.id, r);
      this.keys.put(r.key, r.id);
      return r;
    });
  }

  async poll(id: string, at: number): Promise<void> {
    this.check();
    this.env.transactionSync(() => {
      const r = this.requests.get(id);
      if (r) this.requests.put(id, { ...r, polls: r.polls + 1, lastSeen: Math.max(r.lastSeen, at) });
    });
  }

  async transition(id: string, from: readonly ApprovalState[], to: Transition): Promise<HeldRequest | undefined> {
    this.check();
    return this.env.transactionSync(() => {
      const r = this.requests.get(id);
      if (!r || !from.includes(r.state)) return undefined;
      const next = { ...r, ...to };
      this.requests.put(id, next);
      return next;
    });
  }

  async list(): Promise<HeldRequest[]> {
    this.check();
    return [...this.requests.getRange()].map((e) => e.value);
  }

  async purge(now: number): Promise<void> {
    this.check();
    this.env.transactionSync(() => {
      for (const { key, value } of this.requests.getRange()) {
        if (value.removeAt > now) continue;
        this.requests.remove(key);
        if (this.keys.get(value.key) === value.id) this.keys.remove(value.key);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }
}
