// How this layer talks to its parent, from an [upstream] / [request] table:
// one place for the forwarder and the sub-CA request.
import { readFile } from 'node:fs/promises';
import { EstClient, type EstClientOptions } from '../transport/est-client.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { Logger } from '../util/log.js';

export async function upstreamClientOptions(up: UpstreamConfig, o: { keepAlive?: boolean; logger?: Logger } = {}): Promise<EstClientOptions> {
  return {
    url: up.url,
    ...(up.label ? { label: up.label } : {}),
    trust: await readFile(up.trust, 'utf8'),
    ...(up.cert && up.key ? { clientCert: { cert: await readFile(up.cert, 'utf8'), key: await readFile(up.key, 'utf8') } } : {}),
    // the layer's own credentials; a client's password never goes upstream
    ...(up.username && up.password_file ? { username: up.username, password: (await readFile(up.password_file, 'utf8')).replace(/\r?\n$/, '') } : {}),
    basicAuth: up.basic_auth,
    timeoutMs: up.timeout * 1000,
    connectTimeoutMs: up.connect_timeout * 1000,
    ...(o.keepAlive ? { keepAlive: true } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  };
}

/** A client of the parent with this table's identity and trust, for what is not an enrollment (the parent's CRLs). */
export async function upstreamClient(up: UpstreamConfig, o: { logger?: Logger } = {}): Promise<EstClient> {
  return new EstClient(await upstreamClientOptions(up, o));
}
