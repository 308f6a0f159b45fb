// Byte-exact HTTP over TLS for tests: write exactly the given bytes, read
// exactly what the server writes (until it closes, or until one response is
// complete), and split that into responses without any HTTP library smoothing it.
import { type TLSSocket, connect } from 'node:tls';
import type { RawResponse } from './http.js';

/** A response as parsed from the wire: what http.ts gives, plus the status line and the framing. */
export interface WireResponse extends Omit<RawResponse, 'socket'> {
  /** `HTTP/1.1 200 OK` as sent. */
  statusLine: string;
  chunked: boolean;
}

export interface WireExchange {
  /** Everything the server sent. */
  raw: Buffer;
  responses: WireResponse[];
  /** The server closed the connection (rather than our timeout or our own close). */
  serverClosed: boolean;
  /** Milliseconds from the first byte written to the end of the exchange. */
  ms: number;
  protocol: string | null;
}

export interface WireOptions {
  ca?: string;
  cert?: string;
  key?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** `close`: read until the server closes (libest); `response`: stop after this many complete responses. */
  until?: 'close' | { responses: number };
  /** Give up after this long (the exchange is then returned with serverClosed false). */
  timeoutMs?: number;
  /** Resume this TLS session (from `socket.getSession()` of an earlier connection). */
  session?: Buffer;
  /** Source address (127.0.0.2 and the rest of 127/8 reach loopback too): another client, as the server sees it. */
  localAddress?: string;
}

/** A step of what the client sends: bytes, a pause (slow clients), or bytes made from the connected socket (tls-unique). */
export type WireStep = Buffer | string | { pauseMs: number } | ((socket: TLSSocket) => Buffer | string);

export function tlsConnect(port: number, o: WireOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
      ...(o.ca ? { ca: o.ca } : { rejectUnauthorized: false }),
      ...(o.cert ? { cert: o.cert, key: o.key } : {}),
      ...(o.minVersion ? { minVersion: o.minVersion } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.session ? { session: o.session } : {}),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
    s.once('secureConnect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `steps` on a new TLS connection and collects the answer. */
export async function wireExchange(port: number, steps: WireStep | WireStep[], o: WireOptions = {}): Promise<WireExchange & { socket: TLSSocket }> {
  const socket = await tlsConnect(port, o);
  const protocol = socket.getProtocol();
  const chunks: Buffer[] = [];
  const started = Date.now();
  const until = o.until ?? 'close';
  let serverClosed = false;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, o.timeoutMs ?? 10_000);
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (until !== 'close' && parseResponses(Buffer.concat(chunks), true).length >= until.responses) {
        socket.destroy();
        finish();
      }
    });
    socket.on('end', () => {
      serverClosed = true;
      finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
  });
  for (const step of Array.isArray(steps) ? steps : [steps]) {
    if (socket.destroyed) break;
    if (typeof step === 'function') socket.write(step(socket));
    else if (typeof step === 'object' && 'pauseMs' in step) await sleep(step.pauseMs);
    else socket.write(step);
  }
  await done;
  const raw = Buffer.concat(chunks);
  return { raw, responses: parseResponses(raw), serverClosed, ms: Date.now() - started, protocol, socket };
}

function dechunk(buf: Buffer, from: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let p = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', p);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(p, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', eol);
      return end < 0 ? undefined : { body: Buffer.concat(parts), end: end + 4 };
    }
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    p = eol + 2 + size + 2;
  }
}

/**
 * Splits bytes into HTTP responses. `completeOnly`: drop a trailing response
 * whose body has not fully arrived (a close-delimited body never counts as complete).
 */
export function parseResponses(buf: Buffer, completeOnly = false): WireResponse[] {
  const out: WireResponse[] = [];
  let p = 0;
  while (p < buf.length) {
    const sep = buf.indexOf('\r\n\r\n', p);
    if (sep < 0) break;
    const lines = buf.subarray(p, sep).toString('latin1').split('\r\n');
    const statusLine = lines[0]!;
    const rawHeaders = lines.slice(1).map((l): [string, string] => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of rawHeaders) headers[k.toLowerCase()] = headers[k.toLowerCase()] === undefined ? v : `${headers[k.toLowerCase()]}, ${v}`;
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const start = sep + 4;
    const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '');
    let body: Buffer;
    if (chunked) {
      const d = dechunk(buf, start);
      if (!d) {
        if (!completeOnly) out.push({ statusLine, status, rawHeaders, headers, body: buf.subarray(start), chunked });
        break;
      }
      body = d.body;
      p = d.end;
    } else if (headers['content-length'] !== undefined) {
      const end = start + Number(headers['content-length']);
      if (end > buf.length && completeOnly) break;
      body = buf.subarray(start, end);
      p = end;
    } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0);
      p = start;
    } else {
      if (completeOnly) break;
      body = buf.subarray(start);
      p = buf.length;
    }
    out.push({ statusLine, status, rawHeaders, headers, body, chunked });
  }
  return out;
}

/** The exact-case header value, or undefined when no header has exactly that name. */
export const exactHeader = (r: { rawHeaders: Array<[string, string]> }, name: string): string | undefined =>
  r.rawHeaders.find(([k]) => k === name)?.[1];

/** An HTTP/1.1 request as bytes, headers in the order and case given; Content-Length added for a body unless a framing header is given. */
export function rawRequest(method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Buffer {
  const h: Record<string, string> = { Host: 'localhost', ...headers };
  const framed = Object.keys(h).some((k) => /^(content-length|transfer-encoding)$/i.test(k));
  if (body !== undefined && !framed) h['Content-Length'] = String(Buffer.byteLength(body));
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body ?? '')]);
}
