// GET /metrics over plain HTTP on its own address, for Prometheus: kept off the
// EST port so devices never see it and scrapers need no client certificate.
import { type RequestListener, type Server, createServer } from 'node:http';

export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export const PLAIN_TEXT = 'text/plain; charset=utf-8';

/** A plain HTTP server on HOST:PORT ([v6]:PORT too), listening when this resolves. */
export async function listenPlainHttp(hostPort: string, handler: RequestListener): Promise<Server> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  const server = createServer(handler);
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
