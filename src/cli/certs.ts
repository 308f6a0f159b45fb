// `estgw certs`: the issuance ledger for operators and auditors: list, show,
// export, revoke. It opens DATA_DIR/ledger beside a running gateway (LMDB takes
// readers and writers from several processes) and signs the new CRL itself.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { toPem } from '../est/base64.js';
import { existsSync } from 'node:fs';
import { Ledger, ledgerCas, ledgerPath } from '../ledger/ledger.js';
import type { CertificateRecord } from '../ledger/store.js';
import { REVOCATION_REASONS, isRevocationReason } from '../pki/crl.js';
import { loadLocalCas } from '../server/pki-setup.js';
import { parseDurationMs } from '../util/durations.js';
import { createLogger, flushLogs } from '../util/log.js';

const COMMON = '[--config FILE] [--data-dir DIR] [--set KEY=VALUE]..';
const REASONS = Object.keys(REVOCATION_REASONS).join('|');

const SUBCOMMAND_USAGE: Record<string, string> = {
  list: `certs list [--label L] [--ca NAME] [--subject GLOB] [--expiring 7d] [--revoked] [--json] ${COMMON}
                             certificates on record; --json prints one JSON object a line`,
  show: `certs show SERIAL [--ca NAME] ${COMMON}
                             one certificate: its record, renewals, and PEM`,
  export: `certs export [--format jsonl|pem] ${COMMON}
                             every record with its certificate, for backups and audits`,
  backup: `certs backup DIR ${COMMON}
                             a consistent copy of the ledger while the gateway runs (restore: see docs/operations.md)`,
  revoke: `certs revoke SERIAL --reason ${REASONS}
               [--by NAME] [--ca NAME] ${COMMON}
                             revoke (RFC 5280 reason codes) and sign the CA's next CRL at once;
                             audited with the OS user, or --by`,
};

export const CERTS_USAGE = `Issuance ledger (DATA_DIR/ledger; works while the gateway runs):
${Object.values(SUBCOMMAND_USAGE).map((u) => `  ${u}`).join('\n')}
`;

export class CertsUsageError extends Error {}

export type ConfigLoader = (o: { config?: string; dataDir?: string; set: string[] }) => Promise<Config>;

const COMMON_OPTIONS = { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' }, set: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } } as const;

function out(s: string): void {
  process.stdout.write(s);
}

/** `alice`, or `alice (sudo from bob)`; a uid when the account has no name (containers). */
export function osUser(): string {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = `uid ${process.getuid?.() ?? '?'}`;
  }
  const sudo = process.env.SUDO_USER;
  return sudo && sudo !== name ? `${name} (sudo from ${sudo})` : name;
}

/** Subjects come from CSRs: one line each, whatever they hold. */
const oneLine = (s: string) => JSON.stringify(s).slice(1, -1);

const status = (r: CertificateRecord, now: number) =>
  r.revoked ? `revoked (${r.revoked.reason})` : Date.parse(r.notAfter) <= now ? 'expired' : 'valid';

/** A record as JSON: the certificate as PEM, not bytes. */
const asJson = (r: CertificateRecord, withPem: boolean) => {
  const { der, ...rest } = r;
  return JSON.stringify(withPem ? { ...rest, pem: toPem('CERTIFICATE', der) } : rest);
};

export async function runCertsCli(argv: string[], load: ConfigLoader): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(CERTS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const usage = SUBCOMMAND_USAGE[sub] && `usage: estgw ${SUBCOMMAND_USAGE[sub]}\n`;
  if (!usage) throw new CertsUsageError(`unknown certs command "${sub}"\n${CERTS_USAGE}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ...COMMON_OPTIONS,
      label: { type: 'string' },
      ca: { type: 'string' },
      subject: { type: 'string' },
      expiring: { type: 'string' },
      revoked: { type: 'boolean' },
      json: { type: 'boolean' },
      format: { type: 'string' },
      reason: { type: 'string' },
      by: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(usage);
    return 0;
  }
  const allowed: Record<string, string[]> = {
    list: ['label', 'ca', 'subject', 'expiring', 'revoked', 'json'],
    show: ['ca'],
    export: ['format'],
    backup: [],
    revoke: ['reason', 'by', 'ca'],
  };
  for (const k of ['label', 'ca', 'subject', 'expiring', 'revoked', 'json', 'format', 'reason', 'by'] as const) {
    if (values[k] !== undefined && !allowed[sub]!.includes(k)) throw new CertsUsageError(`certs ${sub} takes no --${k}\n${usage}`);
  }
  const wants = sub === 'show' || sub === 'revoke' ? 'one SERIAL' : sub === 'backup' ? 'one DIR' : undefined;
  if (positionals.length !== (wants ? 1 : 0)) throw new CertsUsageError(`certs ${sub} takes ${wants ?? 'no arguments'}\n${usage}`);
  if (sub === 'revoke' && (!values.reason || !isRevocationReason(values.reason))) {
    throw new CertsUsageError(`certs revoke needs --reason ${REASONS}\n${usage}`);
  }
  if (sub === 'export' && values.format !== undefined && values.format !== 'jsonl' && values.format !== 'pem') throw new CertsUsageError(`--format is jsonl or pem\n${usage}`);
  const expiringMs = values.expiring === undefined ? undefined : parseDurationMs(values.expiring, '--expiring');

  const cfg = await load({ ...(values.config ? { config: values.config } : {}), ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), set: values.set ?? [] });
  if (!existsSync(ledgerPath(cfg.server.data_dir))) {
    throw new Error(`no issuance ledger in ${ledgerPath(cfg.server.data_dir)}: the gateway creates it on its first start with a local CA (is --data-dir or --config right?)`);
  }
  // only revoke signs (a CRL); the other commands read, and need no CA key
  const cas = sub === 'revoke' ? await loadLocalCas(cfg) : new Map();
  const ledger = Ledger.open(cfg.server.data_dir, ledgerCas(cfg, cas));
  try {
    const now = Date.now();
    switch (sub) {
      case 'list': {
        let n = 0;
        for (const r of ledger.store.list({
          ...(values.label !== undefined ? { label: values.label } : {}),
          ...(values.ca !== undefined ? { ca: values.ca } : {}),
          ...(values.subject !== undefined ? { subject: values.subject } : {}),
          ...(expiringMs !== undefined ? { expiringWithinMs: expiringMs } : {}),
          ...(values.revoked ? { revoked: true } : {}),
          now,
        })) {
          if (values.json) out(`${asJson(r, false)}\n`);
          else out(`${r.serial}  ${r.ca}  ${r.notAfter}  ${status(r, now)}${r.islanded ? ' islanded' : ''}${r.caCert ? ' CA' : ''}  ${r.label}  ${oneLine(r.identity)}  ${oneLine(r.subject)}\n`);
          n++;
        }
        if (!values.json) process.stderr.write(`${n} certificate(s)\n`);
        return 0;
      }
      case 'show': {
        const serial = positionals[0]!.toLowerCase();
        const found = ledger.store.find(serial.replace(/^(00)+(?=.)/, '')).filter((r) => values.ca === undefined || r.ca === values.ca);
        if (found.length === 0) {
          process.stderr.write(`estgw: no certificate with serial ${serial} on record\n`);
          return 1;
        }
        for (const r of found) out(showRecord(r, ledger.store.renewalsOf(r.serial), now));
        return 0;
      }
      case 'export': {
        for (const r of ledger.store.list()) out(values.format === 'pem' ? pemWithHeaders(r) : `${asJson(r, true)}\n`);
        return 0;
      }
      case 'backup': {
        await ledger.store.backup(positionals[0]!);
        process.stderr.write(`ledger copied to ${positionals[0]}/data.mdb\n`);
        return 0;
      }
      case 'revoke': {
        const by = values.by ?? osUser();
        const r = ledger.revoke(positionals[0]!, values.reason as keyof typeof REVOCATION_REASONS, by, values.ca);
        const crl = ledger.store.crl(r.ca);
        const logger = createLogger('info', 'estgw-certs');
        logger.info({ serial: r.serial, ca: r.ca, subject: r.subject, reason: r.revoked!.reason, by, crlNumber: crl?.number }, 'certificate revoked');
        flushLogs(logger);
        process.stderr.write(`revoked ${r.serial} (${oneLine(r.subject)}) of CA "${r.ca}": ${r.revoked!.reason}, by ${by}; CRL number ${crl?.number} signed\n`);
        return 0;
      }
    }
    return 2;
  } finally {
    await ledger.close();
  }
}

function showRecord(r: CertificateRecord, renewals: string[], now: number): string {
  const lines: Array<[string, string | undefined]> = [
    ['serial', r.serial],
    ['status', status(r, now)],
    ['subject', r.subject],
    ['subjectAltNames', r.sans.join(', ') || undefined],
    ['issuer', `${r.issuer} (CA "${r.ca}", key ${r.issuerKeyId})`],
    ['key', r.keyType],
    ['notBefore', r.notBefore],
    ['notAfter', r.notAfter],
    ['issued', `${r.issuedAt} by ${r.op} on label "${r.label}"${r.islanded ? ', islanded (parent unreachable)' : ''}${r.caCert ? ', a CA certificate' : ''}`],
    ['identity', r.identity],
    ['through RA', r.ra],
    ['relayed for', r.relayedFor],
    ['renews', r.supersedes ? `${r.supersedes.serial} (${r.supersedes.issuer})` : undefined],
    ['renewed by', renewals.join(', ') || undefined],
    ['revoked', r.revoked ? `${r.revoked.at}, ${r.revoked.reason}, by ${r.revoked.by}` : undefined],
  ];
  return `${lines.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(17)}${oneLine(v!)}`).join('\n')}\n${toPem('CERTIFICATE', r.der)}\n`;
}

/** A PEM bundle openssl reads, each certificate preceded by what it is. */
const pemWithHeaders = (r: CertificateRecord) =>
  `# serial ${r.serial} ca ${r.ca} subject ${oneLine(r.subject)}${r.revoked ? ` revoked ${r.revoked.reason}` : ''}\n${toPem('CERTIFICATE', r.der)}`;
