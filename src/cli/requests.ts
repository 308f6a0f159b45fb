// `estgw requests`: the operator's side of manual approval (issue 12): list
// and show held requests, approve or reject them. It opens the store the
// gateway uses (Redis under key_prefix, or DATA_DIR/approvals) from the same
// configuration, while the gateway runs; every decision is audited.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { approvalsPath } from '../approval/lmdb-store.js';
import { DecisionError, approveRequest, findRequest, rejectRequest, validBy, validReason } from '../approval/decisions.js';
import { oneLine } from '../approval/hook.js';
import { openApprovalStore } from '../approval/queue.js';
import type { HeldRequest } from '../approval/store.js';
import { labelValidityDays } from '../config/schema.js';
import { toPem } from '../est/base64.js';
import { parseDurationMs } from '../util/durations.js';
import { createLogger, flushLogs } from '../util/log.js';
import { type CommandUsage, overview, usageOf } from '../client/usage.js';
import { type ConfigLoader, CertsUsageError, osUser } from './certs.js';

const COMMON = '[--config FILE] [--data-dir DIR] [--set KEY=VALUE]..';

export const REQUESTS_COMMANDS: CommandUsage[] = [
  {
    words: 'requests list',
    text: `requests list [--all] [--json] ${COMMON}
                           requests waiting for approval (--all: decided ones too); --json: one JSON object a line`,
  },
  {
    words: 'requests show',
    text: `requests show ID ${COMMON}
                           one request: names, key, SHA-256 of the CSR, who asked and from where, polls, the CSR`,
  },
  {
    words: 'requests approve',
    text: `requests approve ID [--cert-days N] [--by NAME] ${COMMON}
                           the client's next request gets the certificate (once); --cert-days shortens the
                           validity (never beyond the label's); audited with the OS user, or --by`,
  },
  {
    words: 'requests reject',
    text: `requests reject (ID | [--source ADDR] [--identity ID] [--label NAME]) --reason TEXT [--by NAME] ${COMMON}
                           the client's next request gets 403 with the reason; audited with the OS user, or --by;
                           without ID: every waiting request from that address, identity and label (a flood)`,
  },
];

export const REQUESTS_USAGE = `Manual approval (requests held for an operator; works while the gateway runs; ID: 32 hex digits or the first 8+):
${overview(REQUESTS_COMMANDS)}
`;

const out = (s: string) => void process.stdout.write(s);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** What operators see of a state: a pending request past its expiry is expired, whether or not a gateway recorded it yet. */
const stateOf = (r: HeldRequest, now: number) => (r.state === 'pending' && r.expiresAt <= now ? 'expired' : r.state);

export async function runRequestsCli(argv: string[], load: ConfigLoader): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(REQUESTS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const usage = usageOf(REQUESTS_COMMANDS, ['requests', sub]);
  if (!usage) throw new CertsUsageError(`unknown requests command "${oneLine(sub)}"\n${REQUESTS_USAGE}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' }, set: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' }, all: { type: 'boolean' }, 'cert-days': { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' },
      source: { type: 'string' }, identity: { type: 'string' }, label: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(usage);
    return 0;
  }
  const allowed: Record<string, string[]> = { list: ['json', 'all'], show: [], approve: ['cert-days', 'by'], reject: ['reason', 'by', 'source', 'identity', 'label'] };
  for (const k of ['json', 'all', 'cert-days', 'reason', 'by', 'source', 'identity', 'label'] as const) {
    if (values[k] !== undefined && !allowed[sub]!.includes(k)) throw new CertsUsageError(`requests ${sub} takes no --${k}\n${usage}`);
  }
  const filter = { source: values.source, identity: values.identity, label: values.label };
  const bulk = Object.values(filter).some((v) => v !== undefined);
  const wantsId = sub !== 'list' && !bulk;
  if (positionals.length !== (wantsId ? 1 : 0)) {
    throw new CertsUsageError(`requests ${sub} takes ${bulk ? 'no ID with --source, --identity or --label' : wantsId ? 'one ID' : 'no arguments'}\n${usage}`);
  }
  if (sub === 'reject' && values.reason === undefined) throw new CertsUsageError(`requests reject needs --reason TEXT\n${usage}`);
  if (values.reason !== undefined && !validReason(values.reason)) throw new CertsUsageError('--reason takes one line of 1 to 200 printable characters');
  if (values.by !== undefined && !validBy(values.by)) throw new CertsUsageError('--by takes one line of 1 to 100 printable characters');
  let certDays: number | undefined;
  if (values['cert-days'] !== undefined) {
    certDays = Number(values['cert-days']);
    if (!/^[1-9]\d{0,5}$/.test(values['cert-days']) || !Number.isInteger(certDays)) throw new CertsUsageError('--cert-days takes a positive whole number');
  }

  const cfg = await load({ ...(values.config ? { config: values.config } : {}), ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), set: values.set ?? [] });
  // as `estgw serve`: REDIS_URL names the shared store
  if (process.env.REDIS_URL) cfg.redis.url = process.env.REDIS_URL;
  if (!cfg.redis.url && !existsSync(approvalsPath(cfg.server.data_dir))) {
    throw new Error(`no approval queue in ${approvalsPath(cfg.server.data_dir)}: the gateway creates it when a label or grant has approval = "manual" (is --data-dir or --config right? with Redis, set redis.url or REDIS_URL)`);
  }
  const store = openApprovalStore(cfg);
  const now = Date.now();
  try {
    switch (sub) {
      case 'list': {
        const rows = (await store.list()).filter((r) => values.all || ['pending', 'approved', 'issuing'].includes(stateOf(r, now))).sort((a, b) => a.firstSeen - b.firstSeen);
        for (const r of rows) {
          if (values.json) out(`${JSON.stringify({ ...withoutCsr(r), state: stateOf(r, now) })}\n`);
          else out(`${r.id}  ${stateOf(r, now).padEnd(8)}  ${r.label}  ${iso(r.firstSeen)}  polls ${r.polls}  ${oneLine(r.identity)}  ${oneLine(r.source)}  ${oneLine(r.subject)}${r.sans.length ? `  ${r.sans.map(oneLine).join(',')}` : ''}\n`);
        }
        if (!values.json) process.stderr.write(`${rows.length} request(s)\n`);
        return 0;
      }
      case 'show': {
        out(showRequest(await findRequest(store, positionals[0]!), now));
        return 0;
      }
      case 'approve': {
        const r = await findRequest(store, positionals[0]!);
        const label = cfg.labels[r.label];
        if (certDays !== undefined && label && certDays > labelValidityDays(label)) {
          throw new DecisionError(`--cert-days ${certDays} exceeds label "${r.label}"'s validity (${labelValidityDays(label)} day(s))`);
        }
        const by = values.by ?? osUser();
        const done = await approveRequest(store, r, { by, ...(certDays !== undefined ? { certDays } : {}), validForMs: parseDurationMs(cfg.approval.expiry) });
        audit({ id: r.id, label: r.label, subject: r.subject, sans: r.sans, identity: r.identity, source: r.source, by, certDays }, 'approval request approved');
        process.stderr.write(`approved ${done.id} (${oneLine(r.subject)}) on label "${r.label}" by ${oneLine(by)}: its next request gets the certificate\n`);
        return 0;
      }
      case 'reject': {
        const by = values.by ?? osUser();
        const reject = async (r: HeldRequest) => {
          const done = await rejectRequest(store, r, { by, reason: values.reason!, keepMs: parseDurationMs(cfg.approval.keep_decided) });
          audit({ id: r.id, label: r.label, subject: r.subject, sans: r.sans, identity: r.identity, source: r.source, by, reason: done.reason }, 'approval request rejected');
          return done;
        };
        if (!bulk) {
          const r = await reject(await findRequest(store, positionals[0]!));
          process.stderr.write(`rejected ${r.id} (${oneLine(r.subject)}) on label "${r.label}" by ${oneLine(by)}\n`);
          return 0;
        }
        const matches = (r: HeldRequest) =>
          stateOf(r, now) === 'pending' && (filter.source ?? r.source) === r.source && (filter.identity ?? r.identity) === r.identity && (filter.label ?? r.label) === r.label;
        let n = 0;
        for (const r of (await store.list()).filter(matches)) {
          // one decided or expired meanwhile is left as it is
          if (await reject(r).then(() => true, (e: unknown) => (e instanceof DecisionError ? false : Promise.reject(e)))) n++;
        }
        process.stderr.write(`rejected ${n} request(s) by ${oneLine(by)}\n`);
        return 0;
      }
    }
    return 2;
  } catch (e) {
    if (e instanceof DecisionError) {
      process.stderr.write(`estgw: ${e.message}\n`);
      return 1;
    }
    // the host alone: a Redis URL may carry a password
    if (store.kind === 'redis') throw new Error(`cannot reach the approval queue in Redis at ${redisHost(cfg.redis.url!)} (key prefix "${cfg.redis.key_prefix}"): ${(e as Error).message}`);
    throw e;
  } finally {
    await store.close();
  }
}

function redisHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured URL';
  }
}

function audit(fields: Record<string, unknown>, msg: string): void {
  const logger = createLogger('info', 'estgw-requests');
  logger.info(fields, msg);
  flushLogs(logger);
}

const withoutCsr = (r: HeldRequest) => {
  const { csr: _csr, key: _key, ...rest } = r;
  return rest;
};

function showRequest(r: HeldRequest, now: number): string {
  const lines: Array<[string, string | undefined]> = [
    ['id', r.id],
    ['state', stateOf(r, now)],
    ['label', r.label],
    ['operation', r.op],
    ['subject', r.subject],
    ['subjectAltNames', r.sans.join(', ') || undefined],
    ['key', `${r.keyType}, SHA-256 ${r.keySha256}`],
    ['CSR SHA-256', r.csrSha256],
    ['identity', r.identity],
    ['through RA', r.ra?.join(' issued by ')],
    ['source', r.source],
    ['first seen', iso(r.firstSeen)],
    ['last seen', iso(r.lastSeen)],
    ['polls', String(r.polls)],
    ['expires', r.state === 'pending' ? iso(r.expiresAt) : undefined],
    ['decided', r.decidedAt ? `${iso(r.decidedAt)} by ${r.decidedBy}` : undefined],
    ['reason', r.reason],
    ['cert days', r.certDays === undefined ? undefined : String(r.certDays)],
  ];
  const csrPem = toPem('CERTIFICATE REQUEST', Buffer.from(r.csr, 'base64'));
  return `${lines.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(17)}${oneLine(v!)}`).join('\n')}\n${csrPem}`;
}
