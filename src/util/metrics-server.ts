// GET /metrics over plain HTTP on its own address, for Prometheus: kept off the
// EST port so devices never see it and scrapers need no client certificate.
import { type RequestListener, type Server, createServer } from 'node:http';

export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export const PLAIN_TEXT = 'text/plain; charset=utf-8';

/** Bounds for a plain HTTP listener that anyone on the network reaches (crl_listen): [server]'s own. */
export interface PlainHttpLimits {
  maxPerAddress: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** A plain HTTP server on HOST:PORT ([v6]:PORT too), listening when this resolves. */
export async function listenPlainHttp(hostPort: string, handler: RequestListener, limits?: PlainHttpLimits): Promise<Server> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  // Node's defaults (60 s for headers, checked every 30 s, no cap per address) let one host hold the process's file descriptors
  const server = limits
    ? createServer({
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    }, handler)
    : createServer(handler);
  if (limits) {
    const perAddress = new Map<string, number>();
    server.on('connection', (socket) => {
      const address = socket.remoteAddress;
      const held = address === undefined ? Infinity : (perAddress.get(address) ?? 0);
      if (held >= limits.maxPerAddress) {
        socket.resetAndDestroy();
        return;
      }
      perAddress.set(address!, held + 1);
      socket.once('close', () => {
        const n = perAddress.get(address!)! - 1;
        if (n > 0) perAddress.set(address!, n);
        else perAddress.delete(address!);
      });
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export function serveMetrics(hostPort: string, source: MetricsSource): Promise<Server> {
  return listenPlainHttp(hostPort, (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': PLAIN_TEXT }).end('only GET /metrics here\n');
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': source.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'Content-Type': PLAIN_TEXT }).end(`cannot collect metrics: ${(e as Error).message}\n`),
    );
  });
}
