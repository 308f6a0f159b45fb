// Connections that never become requests: every one that does not finish its
// TLS handshake is destroyed (no CLOSE-WAIT, no file descriptor kept). Serial:
// the file descriptor count is the whole process's.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { eventually } from '../cache/helpers.js';
import { get } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';

const openFds = () => readdirSync('/proc/self/fd').length;
const connections = (gw: TestGateway) => new Promise<number>((resolve, reject) => gw.gateway.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));

/** A TLS record header announcing a 512-byte ClientHello, then only its first bytes. */
const PARTIAL_CLIENT_HELLO = Buffer.from(`1603010200010001fc0303${'00'.repeat(16)}`, 'hex');

interface RawClient {
  socket: Socket;
  /** The server closed or reset the connection. */
  serverClosed: boolean;
  received: Buffer[];
}

/** A plain TCP connection to the TLS port that sends `send` (or nothing) and may half-close. */
function rawClient(port: number, o: { send?: Buffer | string; halfClose?: boolean } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const c: RawClient = { socket, serverClosed: false, received: [] };
    const closed = () => (c.serverClosed = true);
    socket.on('data', (d: Buffer) => c.received.push(d));
    socket.on('end', closed);
    socket.on('error', closed);
    socket.on('close', closed);
    socket.once('connect', () => {
      if (o.send) socket.write(o.send);
      if (o.halfClose) socket.end();
      resolve(c);
    });
    socket.once('error', reject);
  });
}

/** Close the gateway, but give up after a while: with a leaked connection its close never ends, and the test has failed already. */
const closeSoon = (gw: TestGateway) => () => Promise.race([gw.close(), new Promise<void>((r) => setTimeout(r, 5000).unref())]);

test.serial('connections that never finish the TLS handshake are destroyed at the handshake timeout, leaving no connection or file descriptor', async (t) => {
  const gw = await startTestGateway({ server: { handshake_timeout: 1 } });
  t.teardown(closeSoon(gw));
  t.is((await get(gw, 'cacerts')).status, 200, 'warm: what the first request opens is open before the baseline');
  t.true(await eventually(async () => (await connections(gw)) === 0, 5000));
  const baseline = openFds();

  const clients = await Promise.all([
    ...Array.from({ length: 20 }, () => rawClient(gw.port)),
    ...Array.from({ length: 5 }, () => rawClient(gw.port, { send: PARTIAL_CLIENT_HELLO })),
    ...Array.from({ length: 5 }, () => rawClient(gw.port, { send: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' })),
    ...Array.from({ length: 5 }, () => rawClient(gw.port, { halfClose: true })),
    ...Array.from({ length: 5 }, () => rawClient(gw.port, { send: PARTIAL_CLIENT_HELLO, halfClose: true })),
  ]);
  t.true(
    await eventually(() => clients.every((c) => c.serverClosed), 10_000),
    `${clients.filter((c) => !c.serverClosed).length} of ${clients.length} connections were never closed by the server`,
  );
  t.false(
    clients.some((c) => Buffer.concat(c.received).includes('HTTP/')),
    'no plaintext HTTP answer on a connection that never spoke TLS',
  );

  for (const c of clients) c.socket.destroy();
  t.true(
    await eventually(async () => (await connections(gw)) === 0 && openFds() <= baseline, 5000),
    `server connections ${await connections(gw)}, open fds ${openFds()} (baseline ${baseline})`,
  );
  t.is((await get(gw, 'cacerts')).status, 200, 'and it still serves');
});
