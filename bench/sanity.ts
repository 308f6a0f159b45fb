// One real enrollment before the load run: a bench of a gateway that answers
// 401 or 500 quickly would otherwise look splendid.
import { request } from 'node:https';
import { decodeEstBase64 } from '../src/est/base64.js';
import { parseCertsOnly } from '../src/est/pkcs7.js';

export interface EnrollTarget {
  url: URL; // .../simpleenroll
  user: string;
  pass: string;
  /** PEM to trust; undefined: the system store. */
  ca?: Buffer;
}

export const basicAuth = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** Enrolls `body` once; resolves to the number of certificates returned, throws on anything off. */
export async function enrollOnce(t: EnrollTarget, body: string): Promise<number> {
  const head = `simpleenroll sanity check at ${t.url.href}`;
  const res = await post(t, body).catch((e: Error) => {
    throw new Error(`${head}: ${e.message}${t.ca ? '' : ' (pass --cacert?)'}`);
  });
  const ct = (res.contentType ?? '').toLowerCase().replace(/\s+/g, '');
  if (res.status !== 200) throw new Error(`${head}: HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
  if (!ct.startsWith('application/pkcs7-mime') || !ct.includes('smime-type=certs-only')) {
    throw new Error(`${head}: Content-Type "${res.contentType}", want application/pkcs7-mime; smime-type=certs-only`);
  }
  const certs = parseCertsOnly(decodeEstBase64(res.body, 'simpleenroll response'));
  if (certs.length === 0) throw new Error(`${head}: the certs-only response holds no certificate`);
  return certs.length;
}

interface Res {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

function post(t: EnrollTarget, body: string): Promise<Res> {
  return new Promise((res, rej) => {
    const req = request(
      t.url,
      {
        method: 'POST',
        agent: false,
        timeout: 10_000,
        ...(t.ca ? { ca: t.ca } : {}),
        headers: {
          Authorization: basicAuth(t.user, t.pass),
          'Content-Type': 'application/pkcs10',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => res({ status: r.statusCode ?? 0, contentType: r.headers['content-type'], body: Buffer.concat(chunks) }));
        r.on('error', rej);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 10s')));
    req.on('error', rej);
    req.end(body);
  });
}
