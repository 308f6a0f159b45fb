// A scripted EST server for the client tests: real TLS, HTTP parsed by hand,
// answers written byte for byte (so the captures in shared/vectors can be
// replayed exactly, or a 202 or 401 staged).
import { type AddressInfo } from 'node:net';
import { type TLSSocket, createServer } from 'node:tls';

export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  protocol: string | null;
  /** tls-unique as the server computes it (the client's Finished on a full TLS 1.2 handshake). */
  tlsUnique: Buffer | undefined;
  peerCert: Buffer | undefined;
}

export type Responder = (req: SeenRequest, index: number) => Buffer | string | Promise<Buffer | string>;

export interface TinyServer {
  url: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** `HTTP/1.1 <status>` with the given headers and a Content-Length. */
export function httpResponse(status: string, headers: Record<string, string>, body: Buffer | string = ''): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1');
  const head = Object.entries({ ...headers, 'Content-Length': String(b.length) }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\n${head}\r\n`, 'latin1'), b]);
}

export async function startTinyServer(tls: { certChainPem: string; keyPem: string; ca?: string }, respond: Responder, o: { maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<TinyServer> {
  const seen: SeenRequest[] = [];
  const server = createServer(
    { cert: tls.certChainPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false, ...(tls.ca ? { ca: tls.ca } : {}), ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}) },
    (socket: TLSSocket) => {
      let buf = Buffer.alloc(0);
      let handled = false;
      socket.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (handled || end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + len) return;
        handled = true;
        const [method = '', path = ''] = lines[0]!.split(' ');
        const peer = socket.getPeerCertificate();
        const req: SeenRequest = {
          method,
          path,
          headers,
          body: buf.subarray(end + 4, end + 4 + len),
          protocol: socket.getProtocol(),
          tlsUnique: socket.getProtocol() === 'TLSv1.2' ? (socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished()) : undefined,
          peerCert: peer && peer.raw ? Buffer.from(peer.raw) : undefined,
        };
        seen.push(req);
        Promise.resolve(respond(req, seen.length - 1)).then(
          (out) => socket.end(out),
          (e: Error) => socket.end(httpResponse('500 Internal Server Error', { 'Content-Type': 'text/plain' }, `${e.message}\n`)),
        );
      });
      socket.on('error', () => {});
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/.well-known/est`,
    port,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
