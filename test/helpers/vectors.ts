// The raw captures in shared/vectors: split into head and body, de-chunked.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// test files run from dist/test/..., the shared folder sits beside the repository
// copied from shared/vectors so the suite does not depend on what sits beside the clone
export const VECTORS_DIR = process.env.ESTGW_VECTORS_DIR ?? fileURLToPath(new URL('../../../test/fixtures/vectors/', import.meta.url));

export interface Capture {
  name: string;
  raw: Buffer;
  startLine: string;
  headers: Record<string, string>;
  body: Buffer;
}

export function parseCapture(name: string, raw: Buffer): Capture {
  const sep = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, sep).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.subarray(sep + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    let p = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', p);
      const size = parseInt(body.subarray(p, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      p = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length']) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { name, raw, startLine: head[0]!, headers, body };
}

export function loadCaptures(peer: 'libest' | 'globalsign', kind: 'request' | 'response'): Capture[] {
  const dir = join(VECTORS_DIR, peer);
  return readdirSync(dir)
    .filter((f) => f.endsWith(`-${kind}.bin`))
    .sort()
    .map((f) => parseCapture(`${peer}/${f}`, readFileSync(join(dir, f))));
}
