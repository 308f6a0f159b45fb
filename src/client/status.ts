// The status file the daemon rewrites after every attempt, and how
// `estgw client status` prints it: why a renewal failed is one command away.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EstError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { formatDuration } from '../util/durations.js';
import { type RevocationReport, describeRevocation } from './revocation.js';

export interface CertStatus {
  name: string;
  certFile: string;
  subject?: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  nextRenewal?: string;
  lastAttempt?: string;
  lastSuccess?: string;
  /** One line; absent after a success. */
  lastError?: string;
  failures: number;
  /** The last check against the gateway's CRLs. */
  revocation?: RevocationReport;
  /** Why the daemon no longer renews this certificate (a revocation it may not replace). */
  stopped?: string;
  /** The server holds the request for approval (202) since then. */
  pendingSince?: string;
}

export interface StatusDoc {
  updatedAt: string;
  pid: number;
  certs: CertStatus[];
}

export async function writeStatus(file: string, doc: StatusDoc): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
}

export async function readStatus(file: string): Promise<StatusDoc> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new EstError('malformed', `no status file at ${file} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'}): has \`estgw client run\` started?`);
  }
  try {
    return JSON.parse(text) as StatusDoc;
  } catch {
    throw new EstError('malformed', `status file ${file} is not JSON`);
  }
}

const when = (iso: string | undefined, now: number): string => {
  if (!iso) return '-';
  const d = Date.parse(iso) - now;
  return `${iso} (${d >= 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`})`;
};

/** Human-readable, one block per certificate. */
export function formatStatus(doc: StatusDoc, now: number): string {
  const lines = [`status written ${when(doc.updatedAt, now)} by pid ${doc.pid}`];
  for (const c of doc.certs) {
    lines.push(
      '',
      `${c.name}  ${c.certFile}`,
      `  subject       ${c.subject ?? '(no certificate yet)'}`,
      `  notAfter      ${when(c.notAfter, now)}`,
      `  next renewal  ${when(c.nextRenewal, now)}`,
      `  last attempt  ${when(c.lastAttempt, now)}${c.lastAttempt ? (c.lastError ? ' failed' : ' succeeded') : ''}`,
      `  last error    ${c.lastError ?? '-'}${c.failures > 1 ? ` (${c.failures} failures in a row)` : ''}`,
      ...(c.revocation ? [`  revocation    ${describeRevocation(c.revocation)}`] : []),
      ...(c.stopped ? [`  renewal       STOPPED: ${c.stopped}`] : []),
    );
    if (c.pendingSince) lines.push(`  waiting       for approval since ${when(c.pendingSince, now)}`);
  }
  return `${lines.join('\n')}\n`;
}
