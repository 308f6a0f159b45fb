// Connections that never become requests: every one that does not finish its
// TLS handshake is destroyed (no CLOSE-WAIT, no file descriptor kept), and
// neither one source address nor a pile of unfinished handshakes can take the
// connections that other clients need. Serial: the file descriptor count is
// the whole process's.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { eventually } from '../cache/helpers.js';
import { get } from '../helpers/est.js';
import { type TestGateway, startTestGateway } from '../helpers/gateway.js';
import type { TLSSocket } from 'node:tls';
import { parseResponses, rawRequest, tlsConnect, wireExchange } from '../helpers/raw-tls.js';

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
function rawClient(port: number, o: { localAddress?: string; send?: Buffer | string; halfClose?: boolean } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
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

/** GET /cacerts on a new TLS connection from `localAddress`: the status, 0 when refused. */
const cacertsFrom = (gw: TestGateway, localAddress: string) =>
  wireExchange(gw.port, rawRequest('GET', '/.well-known/est/cacerts', { Connection: 'close' }), { ca: gw.caPem, localAddress, timeoutMs: 5000 }).then(
    (x) => x.responses[0]?.status ?? 0,
    () => 0,
  );

/** Close the gateway, but give up after a while: with a leaked connection its close never ends, and the test has failed already. */
const closeSoon = (gw: TestGateway) => () => Promise.race([gw.close(), new Promise<void>((r) => setTimeout(r, 5000).unref())]);

const refusedTotal = async (gw: TestGateway, reason: string) =>
  Number(new RegExp(`^estgw_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(await gw.gateway.metrics.registry.metrics())?.[1] ?? 0);

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

test.serial('an address past max_connections_per_address is refused at once; other addresses are served, and a freed slot is usable again', async (t) => {
  // a long handshake timeout: a connection closed within seconds was refused, not timed out
  const gw = await startTestGateway({ server: { handshake_timeout: 30, max_connections_per_address: 3 } });
  t.teardown(closeSoon(gw));
  const held = await Promise.all(Array.from({ length: 3 }, () => rawClient(gw.port, { localAddress: '127.0.0.2' })));
  const excess = await rawClient(gw.port, { localAddress: '127.0.0.2' });
  t.true(await eventually(() => excess.serverClosed, 5000), 'the fourth connection from 127.0.0.2 is closed by the server');
  t.deepEqual(Buffer.concat(excess.received), Buffer.alloc(0), 'without a byte of TLS');
  t.false(held.some((h) => h.serverClosed), 'the first three stay open');

  t.is(await cacertsFrom(gw, '127.0.0.3'), 200, 'another address is served');
  held[0]!.socket.destroy();
  t.true(await eventually(async () => (await cacertsFrom(gw, '127.0.0.2')) === 200, 5000), '127.0.0.2 is served once it holds fewer');

  t.true((await refusedTotal(gw, 'per_address')) >= 1, 'counted in estgw_connections_refused_total');
  t.true(gw.logs.some((l) => l.msg === 'connection refused' && l.reason === 'per_address' && l.remote === '127.0.0.2' && l.level === 20), 'logged at debug');
  for (const h of held) h.socket.destroy();
});

test.serial('past max_handshakes unfinished handshakes new connections are refused at once; finished handshakes do not count and keep being served', async (t) => {
  const gw = await startTestGateway({ server: { handshake_timeout: 30, keep_alive_timeout: 30, max_handshakes: 4 } });
  t.teardown(closeSoon(gw));
  // established before the flood: TLS done, so it holds no handshake slot
  const kept = await tlsConnect(gw.port, { ca: gw.caPem, localAddress: '127.0.0.5' });
  t.teardown(() => kept.destroy());
  /** A request on the kept connection: the status of its answer. */
  const ask = (path: string) =>
    new Promise<number>((resolve) => {
      const chunks: Buffer[] = [];
      const onData = (d: Buffer) => {
        chunks.push(d);
        const r = parseResponses(Buffer.concat(chunks), true)[0];
        if (!r) return;
        kept.off('data', onData);
        resolve(r.status);
      };
      kept.on('data', onData);
      kept.write(rawRequest('GET', path));
    });
  t.is(await ask('/healthz'), 200);

  const silent = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3'].map((a) => rawClient(gw.port, { localAddress: a })));
  const excess = await rawClient(gw.port, { localAddress: '127.0.0.4' });
  t.true(await eventually(() => excess.serverClosed, 5000), 'a fifth unfinished handshake is refused');
  t.false(silent.some((s) => s.serverClosed));
  t.is(await ask('/.well-known/est/cacerts'), 200, 'an established connection is still served');

  for (const s of silent) s.socket.destroy();
  t.true(await eventually(async () => (await cacertsFrom(gw, '127.0.0.4')) === 200, 5000), 'new connections are served once the handshakes are gone');
  // a finished handshake frees its slot: more TLS connections open at once than max_handshakes
  const many: TLSSocket[] = [];
  t.teardown(() => many.forEach((s) => s.destroy()));
  for (let i = 0; i < 6; i++) many.push(await tlsConnect(gw.port, { ca: gw.caPem, localAddress: '127.0.0.6' }));
  t.is(many.length, 6);
  t.true((await refusedTotal(gw, 'handshakes')) >= 1);
});

test.serial('attacker: the plain-HTTP crl_listen holds no more than max_connections_per_address from one address, and closes a silent connection at headers_timeout', async (t) => {
  const gw = await startTestGateway({ server: { crl_listen: '127.0.0.1:0', max_connections_per_address: 3, headers_timeout: 1 } });
  t.teardown(closeSoon(gw));
  const port = gw.gateway.crlPort!;
  const held = await Promise.all(Array.from({ length: 3 }, () => rawClient(port)));
  const extra = await rawClient(port);
  t.true(await eventually(() => extra.serverClosed, 5000), 'the fourth from one address is refused');
  t.false(held.some((c) => c.serverClosed), 'the first three are still open');
  // another address is served meanwhile
  const other = await rawClient(port, { localAddress: '127.0.0.2', send: 'GET /crl/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' });
  t.true(await eventually(() => Buffer.concat(other.received).toString().startsWith('HTTP/1.1 200'), 5000));
  // the silent ones are closed by headers_timeout, long before Node's own 60 s, and free their slots
  t.true(await eventually(() => held.every((c) => c.serverClosed), 10_000), 'silent connections closed by the server');
  const again = await rawClient(port, { send: 'GET /crl/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' });
  t.true(await eventually(() => Buffer.concat(again.received).toString().startsWith('HTTP/1.1 200'), 5000));
});
