// Raw HTTPS requests for tests: exact status, headers (as sent, with case) and body.
import { request as plainRequest } from 'node:http';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface RawResponse {
  status: number;
  /** Header names exactly as the server wrote them, with their values. */
  rawHeaders: Array<[string, string]>;
  headers: Record<string, string>;
  body: Buffer;
  socket: TLSSocket;
}

export interface RequestOptions {
  /** Source address: another loopback address (127.0.0.2, …) stands for another device. */
  localAddress?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  ca?: string;
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Called once the TLS connection is up, before the body is sent (PoP: read tls-unique). */
  beforeBody?: (socket: TLSSocket) => string | Buffer | undefined;
}

export function httpsRequest(url: string, o: RequestOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: o.method ?? (o.body !== undefined || o.beforeBody ? 'POST' : 'GET'),
      headers: o.headers ?? {},
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.cert ? { cert: o.cert, key: o.key } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw: Array<[string, string]> = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) raw.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        resolve({
          status: res.statusCode!,
          rawHeaders: raw,
          headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')])),
          body: Buffer.concat(chunks),
          socket: res.socket as TLSSocket,
        });
      });
    });
    if (o.beforeBody) {
      req.on('socket', (s) => {
        const go = () => {
          const body = o.beforeBody!(s as TLSSocket);
          req.end(body);
        };
        if ((s as TLSSocket).encrypted && !(s as TLSSocket).connecting) go();
        else s.once('secureConnect', go);
      });
    } else req.end(o.body);
  });
}

export const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** One plain-HTTP request to a loopback port (crl_listen, metrics): status, content type and body. */
export function httpPlain(port: number, path: string, o: { method?: string; body?: Buffer; type?: string } = {}): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = o.body ? { 'Content-Type': o.type ?? 'application/octet-stream', 'Content-Length': o.body.length } : {};
    plainRequest({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    }).on('error', reject).end(o.body);
  });
}
