/** Health checks against real TCP and HTTP servers on loopback (a probe port reused at once too), and the monitor's rise and fall. */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, test } from 'vitest';
import { type CheckSpec, type HealthChange, HealthMonitor, probe } from '../../control/health/checker.js';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
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
  timeoutMs: 200,
  rise: 2,
  fall: 2,
  ...o,
});

describe('probes', () => {
  test('tcp: a listening port passes, a closed one fails with the reason', async () => {
    const port = await listen(net.createServer((s) => s.on('error', () => {}).end()));
    expect(await probe(spec({ port }))).toBeNull();
    const closed = await listen(net.createServer());
    await new Promise((resolve) => servers.pop()!.close(resolve));
    expect(await probe(spec({ port: closed }))).toBe('direct to 127.0.0.1: connection refused');
  });

  test('http: the expected status passes, another fails naming both, a silent server times out', async () => {
    let status = 204;
    const port = await listen(http.createServer((req, res) => res.writeHead(req.url === '/health' ? status : 404).end()));
    expect(await probe(spec({ type: 'http', port, path: '/health', expectStatus: 204 }))).toBeNull();
    status = 503;
    expect(await probe(spec({ type: 'http', port, path: '/health', expectStatus: 204 }))).toBe(
      'direct to 127.0.0.1: http status 503, expected 204',
    );
    const silent = await listen(net.createServer(() => {}));
    expect(await probe(spec({ type: 'http', port: silent, timeoutMs: 100 }))).toMatch(
      /^direct to 127\.0\.0\.1: (no answer in 100 ms|http: ECONNRESET)$/,
    );
  });

  test('http: a server that trickles its answer a byte at a time fails at the timeout, not when it stops', async () => {
    const timers = new Set<NodeJS.Timeout>();
    const port = await listen(
      net.createServer((socket) => {
        socket.on('error', () => {});
        socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
        const timer = setInterval(() => socket.write('a'), 20);
        timers.add(timer);
        socket.on('close', () => clearInterval(timer));
      }),
    );
    try {
      expect(await probe(spec({ type: 'http', port, timeoutMs: 200 }))).toBe('direct to 127.0.0.1: no answer in 200 ms');
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });

  test('http: a path the client refuses (space, CR/LF, NUL, above U+00FF) is a failed check naming why', async () => {
    const port = await listen(http.createServer((_, res) => res.writeHead(200).end()));
    for (const path of ['/a b', '/a\r\nHost: x', '/a\u0000', '/\u0101']) {
      expect(await probe(spec({ type: 'http', port, path }))).toBe('direct to 127.0.0.1: http: ERR_UNESCAPED_CHARACTERS');
    }
  });
  // A probe bound to one local port ends with a reset: a client that closed first would
  // hold the 4-tuple in TIME_WAIT and the next probe's connect would fail.
  test('tcp: consecutive probes from one local port all connect', async () => {
    const port = await listen(net.createServer((socket) => socket.on('error', () => {})));
    const reasons: (string | null)[] = [];
    for (let i = 0; i < 30; i++) reasons.push(await probe(spec({ port, localPort: 61501 })));
    expect(reasons).toEqual(Array(30).fill(null));
  });

  test('http: consecutive probes from one local port all get their answer', async () => {
    // Answers and keeps the connection open, so the client closes first.
    const answering = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    });
    const port = await listen(answering);
    const reasons: (string | null)[] = [];
    for (let i = 0; i < 30; i++) reasons.push(await probe(spec({ type: 'http', port, localPort: 61502 })));
    expect(reasons).toEqual(Array(30).fill(null));
  });
});

/** Waits (up to 5 s) until `done`, checking every 20 ms. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the monitor', () => {
  test('unknown -> up on the first success; up -> down after `fall` failures; down -> up after `rise` successes', async () => {
    let healthy = true;
    const port = await listen(http.createServer((_, res) => res.writeHead(healthy ? 200 : 500).end()));
    const monitor = new HealthMonitor();
    const changes: HealthChange[] = [];
    const next = () => new Promise<HealthChange>((resolve) => monitor.once('change', resolve));
    monitor.on('change', (c) => changes.push(c));
    try {
      monitor.sync(new Map([['a', spec({ type: 'http', port, rise: 3, fall: 2 })]]));
      expect(await next()).toMatchObject({ key: 'a', from: 'unknown', to: 'up' });
      healthy = false;
      const down = await next();
      expect(down).toMatchObject({ from: 'up', to: 'down', reason: 'direct to 127.0.0.1: http status 500, expected 200' });
      healthy = true;
      expect(await next()).toMatchObject({ from: 'down', to: 'up' });
      expect(changes.map((c) => c.to)).toEqual(['up', 'down', 'up']);
      // The current reason clears; the last failure stays for the operator to see.
      expect(monitor.status('a')).toMatchObject({
        health: 'up',
        reason: null,
        lastFailure: { reason: 'direct to 127.0.0.1: http status 500, expected 200' },
      });
      expect(monitor.status('a')!.lastFailure!.at).toBeLessThanOrEqual(monitor.status('a')!.lastCheckedAt!);
    } finally {
      monitor.close();
    }
  });

  test('a held probe is not sent and counts neither way; release() sends it at once', async () => {
    const port = await listen(net.createServer((socket) => socket.on('error', () => {})));
    const monitor = new HealthMonitor();
    let hold: string | null = 'waiting to probe: not yet';
    monitor.holdProbes(() => hold);
    try {
      // An interval no test waits out: only release() can run the check again.
      monitor.sync(new Map([['a', spec({ port, intervalMs: 60_000 })]]));
      expect(monitor.status('a')).toMatchObject({ health: 'unknown', reason: 'waiting to probe: not yet', lastCheckedAt: null });
      const up = new Promise<HealthChange>((resolve) => monitor.once('change', resolve));
      hold = null;
      monitor.release();
      expect(await up).toMatchObject({ from: 'unknown', to: 'up', reason: null });
    } finally {
      monitor.close();
    }
  });

  test('a probe held longer than interval x fall fails with the hold reason: a backend never reachable does not stay as it was', async () => {
    const monitor = new HealthMonitor(undefined, 0);
    monitor.holdProbes(() => 'waiting to probe through the VIP: MAC address not resolved');
    const changes: HealthChange[] = [];
    monitor.on('change', (c) => changes.push(c));
    try {
      monitor.sync(new Map([['a', spec({ intervalMs: 20, fall: 2 })]]), 'up');
      expect(monitor.status('a')).toMatchObject({ health: 'up', lastCheckedAt: null });
      await until(() => changes.length > 0, 'the target to go down');
      expect(changes[0]).toMatchObject({ from: 'up', to: 'down' });
      expect(changes[0]!.reason).toMatch(/^waiting to probe through the VIP: MAC address not resolved \(for \d+\.\d s\)$/);
    } finally {
      monitor.close();
    }
  });

  test('a probe the LB cannot send (its source not on the host) is held, and past interval x fall fails with that reason', async () => {
    const port = await listen(net.createServer((socket) => socket.on('error', () => {})));
    const monitor = new HealthMonitor(undefined, 0);
    const changes: HealthChange[] = [];
    monitor.on('change', (c) => changes.push(c));
    try {
      const unsendable = spec({ port, via: 'vip', localPort: 61440, localAddress: '198.18.255.254', intervalMs: 20, fall: 2 });
      monitor.sync(new Map([['a', unsendable]]), 'up');
      await until(() => changes.length > 0, 'the target to go down');
      expect(changes[0]).toMatchObject({ from: 'up', to: 'down' });
      expect(changes[0]!.reason).toMatch(
        /^waiting to probe: the LB's source address 198\.18\.255\.254 is not on this host.* \(for \d+\.\d s\)$/,
      );
    } finally {
      monitor.close();
    }
  });

  test('a probe the client refuses: down with the reason, the checks go on, nothing unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const port = await listen(http.createServer((_, res) => res.writeHead(200).end()));
    const errors: unknown[] = [];
    const monitor = new HealthMonitor((error) => errors.push(error));
    try {
      monitor.sync(new Map([['a', spec({ type: 'http', port, path: '/a b', intervalMs: 20 })]]));
      await until(() => monitor.status('a')?.health === 'down', 'the target to go down');
      expect(monitor.status('a')?.reason).toBe('direct to 127.0.0.1: http: ERR_UNESCAPED_CHARACTERS');
      const first = monitor.status('a')!.lastCheckedAt!;
      await until(() => monitor.status('a')!.lastCheckedAt! > first, 'another check');
      expect(unhandled).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      monitor.close();
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a change listener that throws is reported to onError, and the checks go on', async () => {
    const port = await listen(net.createServer((s) => s.on('error', () => {}).end()));
    const errors: unknown[] = [];
    const monitor = new HealthMonitor((error) => errors.push(error));
    monitor.on('change', () => {
      throw new Error('listener failed');
    });
    try {
      monitor.sync(new Map([['a', spec({ port, intervalMs: 20 })]]));
      await until(() => errors.length > 0, 'the error reported');
      expect(errors[0]).toMatchObject({ message: 'listener failed' });
      const first = monitor.status('a')!.lastCheckedAt!;
      await until(() => monitor.status('a')!.lastCheckedAt! > first, 'another check');
    } finally {
      monitor.close();
    }
  });

  test('targets restored at start begin up; removed targets stop', async () => {
    const monitor = new HealthMonitor();
    try {
      monitor.sync(new Map([['b', spec({ port: 1, intervalMs: 60_000 })]]), 'up');
      expect(monitor.status('b')?.health).toBe('up');
      monitor.sync(new Map());
      expect(monitor.status('b')).toBeUndefined();
    } finally {
      monitor.close();
    }
  });
});
