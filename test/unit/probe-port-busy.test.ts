/**
 * A via-vip probe whose local port another process holds: with real sockets on
 * loopback, each check type's failed bind holds the target (its health stays, the
 * reason names the port) and tells the allocator, which gives that check another
 * port; the reserved-ports list xlb serve writes keeps what was there.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { checkTargets } from '../../control/controller/targets.js';
import { PROBE_PORT_MAX, PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import { ephemeralRangeNote, withReservedRange } from '../../control/daemon/probe-ports.js';
import { BUSY_PORT_RETRY_MS, BusyPorts } from '../../control/health/busy-ports.js';
import { type CheckSpec, type HealthChange, HealthMonitor, type PortBusy } from '../../control/health/checker.js';
import type { StateFile } from '../../control/state/schema.js';
import { storedBackend, storedVip } from '../lib/stored.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A TCP server on loopback answering every connection (HTTP 200 for an HTTP probe), and its port. */
async function tcpServer(): Promise<number> {
  const server = http.createServer((_, response) => response.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** A UDP echo server on loopback, and its port. */
async function udpEcho(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, from) => socket.send(message, from.port, from.address));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  closers.push(() => socket.close());
  return socket.address().port;
}

/** A port another process could hold (a TCP listener and a UDP socket, no SO_REUSEADDR, on it), and how to let it go. */
async function heldPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const listener = net.createServer().listen(0, '0.0.0.0');
  await once(listener, 'listening');
  const port = (listener.address() as net.AddressInfo).port;
  const datagram = dgram.createSocket('udp4');
  datagram.bind(port);
  await once(datagram, 'listening');
  let held = true;
  const release = async () => {
    if (!held) return;
    held = false;
    await Promise.all([new Promise((resolve) => listener.close(resolve)), new Promise<void>((resolve) => datagram.close(resolve))]);
  };
  closers.push(() => void release());
  return { port, release };
}

const viaVip = (o: Partial<CheckSpec>): CheckSpec => ({
  type: 'tcp',
  address: '127.0.0.1',
  port: 1,
  via: 'vip',
  backend: '198.18.0.11',
  forwarding: 'dsr',
  path: '/',
  expectStatus: 200,
  send: 'ping',
  intervalMs: 60_000,
  timeoutMs: 1000,
  rise: 1,
  fall: 1,
  ...o,
});

describe('a probe whose local port another process holds', () => {
  test.each(['tcp', 'http', 'udp'])('%s: held with the port named, not counted, and the port reported busy', async (type) => {
    const port = type === 'udp' ? await udpEcho() : await tcpServer();
    const { port: localPort, release } = await heldPort();
    const health = new HealthMonitor();
    closers.push(() => health.close());
    const busy: PortBusy[] = [];
    const changes: HealthChange[] = [];
    const checked: unknown[] = [];
    health.on('change', (change) => changes.push(change));
    health.on('checked', (result) => checked.push(result));
    const reported = once(health, 'portBusy');
    health.on('portBusy', (event) => busy.push(event));
    health.sync(new Map([['0:0', viaVip({ type, port, localPort })]]), 'up');

    await reported;
    expect(busy).toEqual([{ key: '0:0', port: localPort }]);
    expect(health.status('0:0')).toMatchObject({
      health: 'up',
      reason: `waiting to probe: local port ${localPort} is held by another process on the LB (EADDRINUSE); the check moves to another probe port`,
      lastFailure: null,
    });
    expect(changes).toEqual([]);
    expect(checked).toEqual([]);
    expect(health.busyPorts.has(localPort)).toBe(true);

    // Once the other process lets go, the same check passes from that port.
    await release();
    const free = new HealthMonitor();
    closers.push(() => free.close());
    const passed = once(free, 'checked');
    free.sync(new Map([['0:0', viaVip({ type, port, localPort })]]), 'up');
    expect(await passed).toEqual([expect.objectContaining({ key: '0:0', reason: null })]);
  });
});

describe('the probe-port allocator', () => {
  const backends = [0, 1, 2].map((id) => storedBackend(id, `198.18.0.${11 + id}`));
  const healthCheck = { type: 'tcp', via: 'vip' as const, intervalMs: 60_000 };
  const state: StateFile = { version: 1, vips: [storedVip(0, '198.19.0.1', backends, { forwarding: 'dsr', healthCheck })] };
  const ports = (specs: Map<string, CheckSpec>) => [...specs.values()].map((s) => s.localPort);

  test('skips busy ports when giving one, and moves a check off a busy port it held', () => {
    const first = checkTargets(state);
    expect(ports(first.specs)).toEqual([PROBE_PORT_MIN, PROBE_PORT_MIN + 1, PROBE_PORT_MIN + 2]);

    const busy = new Set([PROBE_PORT_MIN + 1, PROBE_PORT_MIN + 3]);
    const moved = checkTargets(state, first.probes, { busy });
    expect(ports(moved.specs)).toEqual([PROBE_PORT_MIN, PROBE_PORT_MIN + 4, PROBE_PORT_MIN + 2]);
    expect(moved.probes.filter((p) => p.backendId === 1).map((p) => p.localPort)).toEqual([PROBE_PORT_MIN + 4, PROBE_PORT_MIN + 4]);
    expect(moved.probes.some((p) => busy.has(p.localPort))).toBe(false);

    // Fresh, every port but the last busy: the first check gets the last port, the rest none.
    const allBut = { has: (port: number) => port !== PROBE_PORT_MAX };
    expect(ports(checkTargets(state, [], { busy: allBut }).specs)).toEqual([PROBE_PORT_MAX, undefined, undefined]);
  });

  test('a busy port is skipped for a while, then tried again', () => {
    let now = 1_000_000;
    const busy = new BusyPorts(() => now);
    busy.add(PROBE_PORT_MIN);
    now += BUSY_PORT_RETRY_MS - 1;
    expect(busy.has(PROBE_PORT_MIN)).toBe(true);
    expect(busy.has(PROBE_PORT_MIN + 1)).toBe(false);
    now += 1;
    expect(busy.has(PROBE_PORT_MIN)).toBe(false);
  });
});

describe('net.ipv4.ip_local_reserved_ports', () => {
  const range = [PROBE_PORT_MIN, PROBE_PORT_MAX] as const;
  test.each([
    ['', '61440-65535'],
    ['\n', '61440-65535'],
    ['61440-65535\n', '61440-65535'],
    ['1000,2000-2010\n', '1000,2000-2010,61440-65535'],
    ['62000-62010,8080', '8080,61440-65535'],
    ['60000-61439', '60000-65535'],
    ['60000-61438', '60000-61438,61440-65535'],
    ['61000-61500,65535', '61000-65535'],
  ])('%j with the probe ports is %j', (existing, merged) => {
    expect(withReservedRange(existing, ...range)).toBe(merged);
  });

  test.each(['70000', '2000-1000', 'x', '1000-'])('a list with %j is refused, naming it', (bad) => {
    expect(() => withReservedRange(`1000,${bad}`, ...range)).toThrow(`${JSON.stringify(bad)} is not a port or a low-high port range`);
  });

  test('an ephemeral range reaching into the probe ports is named with them', () => {
    expect(ephemeralRangeNote('32768\t60999\n')).toEqual({
      overlaps: false,
      text: 'net.ipv4.ip_local_port_range 32768-60999 leaves the health-check probe ports 61440-65535 free',
    });
    const wide = ephemeralRangeNote('1024\t65535\n');
    expect(wide.overlaps).toBe(true);
    expect(wide.text).toBe(
      'net.ipv4.ip_local_port_range 1024-65535 overlaps the health-check probe ports 61440-65535, which xlb serve reserves ' +
        'in net.ipv4.ip_local_reserved_ports: outgoing connections keep 60416 ephemeral ports',
    );
    // A narrow range says how little it leaves.
    expect(ephemeralRangeNote('61000 65535').text).toMatch(/keep 440 ephemeral ports$/);
    expect(ephemeralRangeNote('65000 65100')).toMatchObject({ overlaps: true, text: expect.stringMatching(/keep 0 ephemeral ports$/) });
  });
});
