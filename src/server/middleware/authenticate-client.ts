// Who is asking: TLS client certificate and/or HTTP Basic, by the label's rules.
// libest sends `Authorization: Basic Og==` (empty) to mean "my certificate speaks for me".
import type { TLSSocket } from 'node:tls';
import type { Context, Next } from 'koa';
import { unauthorized } from '../../errors.js';
import type { Identity } from '../../policy/policy.js';
import { chainsTo, peerCertificate } from '../peer-certificate.js';
import type { Services } from '../services.js';
import type { EstState } from '../state.js';

export function parseBasic(header: string): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  const creds = { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
  return creds.user === '' && creds.password === '' ? undefined : creds;
}

const verifiedOn = new WeakMap<TLSSocket, string>();

export function authenticateClient(services: Services) {
  return async function authenticate(ctx: Context & { state: EstState }, next: Next): Promise<void> {
    const label = ctx.state.label!;
    const methods = label.cfg.auth;
    const peer = peerCertificate(ctx.state.socket!);
    ctx.state.peer = peer;
    const certOk = methods.includes('cert') && peer !== undefined && chainsTo(peer, label.clientAnchors, `${label.name}:client`);

    const header = ctx.get('Authorization');
    if (header && !/^Basic\s/i.test(header)) throw unauthorized('only HTTP Basic authentication is supported');
    const basic = header ? parseBasic(header) : undefined;
    let user: string | undefined;
    if (basic && methods.includes('basic')) {
      const socket = ctx.state.socket!;
      // a kept-alive connection repeating the header it was already accepted with skips the check
      if (verifiedOn.get(socket) !== header) {
        if (!(await services.passwords.verify(basic.user, basic.password))) throw unauthorized('invalid user name or password');
        verifiedOn.set(socket, header);
      }
      user = basic.user;
    }

    let identity: Identity | undefined;
    if (label.cfg.require_both ? certOk && user !== undefined : certOk || user !== undefined) {
      const policy = label.policy;
      const userRa = user !== undefined && policy.declaresRa({ kind: 'user', name: user, role: 'device' });
      if (certOk) {
        const cert: Identity = { kind: 'cert', name: peer!.cn, role: 'device', certSubject: peer!.subject, issuer: peer!.issuer };
        // an RA is one because our own PKI said so (cmcRA, or declared by name): a bootstrap or manufacturer CA makes none
        const certRa = (peer!.isRa || policy.declaresRa(cert)) && chainsTo(peer!, label.raAnchors, `${label.name}:ra`);
        identity = { ...cert, role: certRa || userRa ? 'ra' : 'device', ...(user === undefined ? {} : { user }) };
      } else identity = { kind: 'user', name: user!, role: userRa ? 'ra' : 'device' };
    }
    if (!identity) {
      const why = peer && !certOk
        ? `client certificate not accepted on label "${label.name}"${peer.verifyError ? ` (${peer.verifyError})` : ''}`
        : label.cfg.require_both ? 'a trusted client certificate and Basic credentials are both required' : 'authentication required';
      throw unauthorized(why);
    }
    ctx.state.identity = identity;
    await next();
  };
}
