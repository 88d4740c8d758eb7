/**
 * Probes bound to one local port, one after another: each ends with a reset, so no
 * 4-tuple waits in TIME_WAIT and every next connect from that port succeeds.
 */
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, expect, test } from 'vitest';
import { type CheckSpec, probe } from '../../control/health/checker.js';

const servers: net.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

const spec = (o: Partial<CheckSpec>): CheckSpec => ({
  type: 'tcp',
  address: '127.0.0.1',
  port: 1,
  via: 'direct',
  backend: '127.0.0.1',
  forwarding: 'dsr',
  path: '/',
  expectStatus: 200,
  intervalMs: 100,
  timeoutMs: 1000,
  rise: 1,
  fall: 1,
  ...o,
});

const PROBES = 30;

test('tcp: consecutive probes from one local port all connect', async () => {
  // The server never closes first: a closing client would hold the 4-tuple in TIME_WAIT.
  const port = await listen(net.createServer((socket) => socket.on('error', () => {})));
  const reasons: (string | null)[] = [];
  for (let i = 0; i < PROBES; i++) reasons.push(await probe(spec({ port, localPort: 61501 })));
  expect(reasons).toEqual(Array(PROBES).fill(null));
});

test('http: consecutive probes from one local port all get their answer', async () => {
  // Answers and keeps the connection open, so the client closes first.
  const answering = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  });
  const port = await listen(answering);
  const reasons: (string | null)[] = [];
  for (let i = 0; i < PROBES; i++) reasons.push(await probe(spec({ type: 'http', port, localPort: 61502 })));
  expect(reasons).toEqual(Array(PROBES).fill(null));
});
