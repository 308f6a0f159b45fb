// multipart/mixed for serverkeygen (RFC 7030 §4.4.2). Every delimiter after the
// first follows a CRLF (RFC 2046 §5.1.1): Go's mime/multipart finds no part otherwise.
import { malformed } from '../errors.js';
import { encodeEstBase64 } from './base64.js';

export const SERVERKEYGEN_BOUNDARY = 'est-gateway-boundary';

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

export function buildServerKeygenBody(pkcs8: Uint8Array, certsOnly: Uint8Array, boundary = SERVERKEYGEN_BOUNDARY): Buffer {
  const part = (type: string, der: Uint8Array) =>
    `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${encodeEstBase64(der)}\r\n`;
  return Buffer.from(
    part('application/pkcs8', pkcs8) + part('application/pkcs7-mime; smime-type=certs-only', certsOnly) + `--${boundary}--\r\n`,
    'latin1',
  );
}

export function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw malformed('multipart response has no boundary');
  return (m[1] ?? m[2])!;
}

/** Parses a multipart body; tolerates LF or CRLF line ends and a preamble. */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const text = body.toString('latin1');
  const delim = `--${boundary}`;
  const pieces = text.split(delim);
  const parts: Part[] = [];
  for (let i = 1; i < pieces.length; i++) {
    let p = pieces[i]!;
    if (p.startsWith('--')) break;
    p = p.replace(/^[ \t]*\r?\n/, '');
    const sep = /\r?\n\r?\n/.exec(p);
    if (!sep) throw malformed('multipart part has no header end');
    const headers: Record<string, string> = {};
    for (const line of p.slice(0, sep.index).split(/\r?\n/)) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(p.slice(sep.index + sep[0].length).replace(/\r?\n$/, ''), 'latin1') });
  }
  if (parts.length === 0) throw malformed('multipart body has no parts');
  return parts;
}
