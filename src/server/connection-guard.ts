// Admission of TCP connections before TLS: a cap per source address and one on
// handshakes not yet finished, so that neither one address nor a flood of
// silent connections takes what other clients need. A refused connection is
// reset before any TLS state exists for it.
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../util/log.js';

export type RefusedReason = 'per_address' | 'handshakes';

export interface ConnectionLimits {
  maxPerAddress: number;
  maxHandshakes: number;
}

export interface ConnectionGuard {
  /** Resets every connection still open (the end of a shutdown's grace). */
  destroyAll(): void;
}

// remote address and port alone can repeat across local addresses of a wildcard listener
const fourTuple = (s: Socket) => `${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`;

export function guardConnections(server: TlsServer, limits: ConnectionLimits, o: { logger: Logger; refused?: (reason: RefusedReason) => void }): ConnectionGuard {
  // tls.Server starts TLS on every socket from its own 'connection' listener:
  // taken out here and called only for the connections admitted
  const startTls = server.listeners('connection') as Array<(raw: Socket) => void>;
  server.removeAllListeners('connection');
  const perAddress = new Map<string, number>();
  const handshaking = new Map<string, Socket>();
  const open = new Set<Socket>();

  server.on('connection', (raw: Socket) => {
    raw.on('error', () => {}); // a reset client; TLS reports its own errors
    const address = raw.remoteAddress;
    if (address === undefined) {
      raw.destroy(); // gone before we got to it
      return;
    }
    const held = perAddress.get(address) ?? 0;
    const reason: RefusedReason | undefined = handshaking.size >= limits.maxHandshakes ? 'handshakes' : held >= limits.maxPerAddress ? 'per_address' : undefined;
    if (reason) {
      o.logger.debug({ remote: address, reason }, 'connection refused');
      o.refused?.(reason);
      raw.resetAndDestroy(); // RST: no TIME-WAIT left on this side
      return;
    }
    perAddress.set(address, held + 1);
    const key = fourTuple(raw);
    handshaking.set(key, raw);
    open.add(raw);
    raw.once('close', () => {
      open.delete(raw);
      if (handshaking.get(key) === raw) handshaking.delete(key);
      const n = perAddress.get(address)! - 1;
      if (n > 0) perAddress.set(address, n);
      else perAddress.delete(address);
    });
    for (const l of startTls) l.call(server, raw);
  });
  server.on('secureConnection', (tls: TLSSocket) => handshaking.delete(fourTuple(tls)));

  return {
    destroyAll() {
      for (const raw of open) raw.destroy();
    },
  };
}
