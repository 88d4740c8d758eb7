/**
 * A via-vip probe whose local port another process holds: with real sockets on
 * loopback, each check type's failed bind holds the target (its health stays, the
 * reason names the port) and tells the allocator, which gives that check another
 * port of its family and transport; a check left without one waits (held, then failed
 * past the hold's limit, naming the held ports); a trial bind finds the ports let go;
 * the reserved-ports list xlb serve writes keeps what was there.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { checkTargets } from '../../control/controller/targets.js';
import { PROBE_PORT_MAX, PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import { ephemeralRangeNote, heldProbePortsNote, withReservedRange } from '../../control/daemon/probe-ports.js';
import { BusyPorts, type ProbeSocket, trialBind, type Transport } from '../../control/health/busy-ports.js';
import { type CheckSpec, type HealthChange, HealthMonitor, type PortBusy } from '../../control/health/checker.js';
import type { StateFile } from '../../control/state/schema.js';
import { storedBackend, storedVip } from '../lib/stored.js';

const closers: (() => void)[] = [];
/** An address of the test network no interface of this host has. */
const NOT_LOCAL = '198.18.255.254';
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
    const transport = type === 'udp' ? 'udp' : 'tcp';
    expect(health.busyPorts.has(4, transport, localPort)).toBe(true);
    expect(health.busyPorts.has(6, transport, localPort)).toBe(false);
    expect(health.busyPorts.has(4, transport === 'tcp' ? 'udp' : 'tcp', localPort)).toBe(false);

    // Once the other process lets go, the same check passes from that port.
    await release();
    const free = new HealthMonitor();
    closers.push(() => free.close());
    const passed = once(free, 'checked');
    free.sync(new Map([['0:0', viaVip({ type, port, localPort })]]), 'up');
    expect(await passed).toEqual([expect.objectContaining({ key: '0:0', reason: null })]);
  });
});

describe('a probe whose 4-tuple another socket sharing its port (SO_REUSEADDR) took first', () => {
  test.each(['tcp', 'http'])('%s: held as a taken port, not read as a missing source', async (type) => {
    const port = await tcpServer();
    const taker = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort: 0 });
    await once(taker, 'connect');
    closers.push(() => taker.destroy());
    const localPort = taker.localPort!;
    const health = new HealthMonitor();
    closers.push(() => health.close());
    const reported = once(health, 'portBusy');
    health.sync(new Map([['0:0', viaVip({ type, port, localPort, localAddress: '127.0.0.1' })]]), 'up');

    expect(await reported).toEqual([{ key: '0:0', port: localPort }]);
    expect(health.status('0:0')).toMatchObject({
      health: 'up',
      reason: `waiting to probe: local port ${localPort} is held by another process on the LB (EADDRNOTAVAIL); the check moves to another probe port`,
    });
  });
});

describe('a probe whose source address the host does not have', () => {
  test.each(['tcp', 'http', 'udp'])('%s: held with the source named, not counted', async (type) => {
    const port = type === 'udp' ? await udpEcho() : await tcpServer();
    const health = new HealthMonitor();
    closers.push(() => health.close());
    const changes: HealthChange[] = [];
    const checked: unknown[] = [];
    health.on('change', (change) => changes.push(change));
    health.on('checked', (result) => checked.push(result));
    const waiting = `waiting to probe: the LB's source address ${NOT_LOCAL} is not on this host: a via-vip probe binds it`;
    health.sync(new Map([['0:0', viaVip({ type, port, localPort: PROBE_PORT_MIN, localAddress: NOT_LOCAL })]]), 'up');

    await vi.waitFor(() => expect(health.status('0:0')?.reason).toBe(waiting), { timeout: 5000 });
    expect(health.status('0:0')).toMatchObject({ health: 'up', lastFailure: null });
    expect(changes).toEqual([]);
    expect(checked).toEqual([]);
  });
});

/** Ports held for one family and transport, as BusyPorts.has answers. */
const heldFor = (family: number, transport: Transport, held: (port: number) => boolean) => ({
  has: (f: number, t: Transport, port: number) => f === family && t === transport && held(port),
});

describe('the probe-port allocator', () => {
  const backends = [0, 1, 2].map((id) => storedBackend(id, `198.18.0.${11 + id}`));
  const healthCheck = { type: 'tcp', via: 'vip' as const, intervalMs: 60_000 };
  const state: StateFile = { version: 1, vips: [storedVip(0, '198.19.0.1', backends, { forwarding: 'dsr', healthCheck })] };
  const ports = (specs: Map<string, CheckSpec>) => [...specs.values()].map((s) => s.localPort);

  test('skips busy ports when giving one, and moves a check off a busy port it held', () => {
    const first = checkTargets(state);
    expect(ports(first.specs)).toEqual([PROBE_PORT_MIN, PROBE_PORT_MIN + 1, PROBE_PORT_MIN + 2]);

    const taken = new Set([PROBE_PORT_MIN + 1, PROBE_PORT_MIN + 3]);
    const busy = heldFor(4, 'tcp', (port) => taken.has(port));
    const moved = checkTargets(state, first.probes, { busy });
    expect(ports(moved.specs)).toEqual([PROBE_PORT_MIN, PROBE_PORT_MIN + 4, PROBE_PORT_MIN + 2]);
    expect(moved.probes.filter((p) => p.backendId === 1).map((p) => p.localPort)).toEqual([PROBE_PORT_MIN + 4, PROBE_PORT_MIN + 4]);
    expect(moved.probes.some((p) => taken.has(p.localPort))).toBe(false);
    expect(moved.waiting).toEqual(new Map());

    // Fresh, every port but the last busy: the first check gets the last port, the rest wait, naming why.
    const allBut = checkTargets(state, [], { busy: heldFor(4, 'tcp', (port) => port !== PROBE_PORT_MAX) });
    expect(ports(allBut.specs)).toEqual([PROBE_PORT_MAX, undefined, undefined]);
    const reason =
      'waiting for a probe port: all 4095 free probe ports for 198.19.0.1 port 80 (tcp/IPv4, 61440-65535) are held by other processes on the LB';
    expect(allBut.waiting).toEqual(
      new Map([
        ['0:1', reason],
        ['0:2', reason],
      ]),
    );
  });

  test('a port held for one family and transport is given to checks of the others', () => {
    const six = [0, 1].map((id) => storedBackend(id, `2001:db8::${11 + id}`));
    const mixed: StateFile = {
      version: 1,
      vips: [
        storedVip(0, '198.19.0.1', backends.slice(0, 2), { forwarding: 'dsr', healthCheck }),
        storedVip(1, '198.19.0.1', backends.slice(2), {
          protocol: 'udp',
          forwarding: 'dsr',
          healthCheck: { ...healthCheck, type: 'udp', send: 'x' },
        }),
        storedVip(2, '2001:db8:f::1', six, { forwarding: 'dsr', healthCheck }),
      ],
    };
    const busy = heldFor(4, 'tcp', (port) => port === PROBE_PORT_MIN);
    const { specs, waiting } = checkTargets(mixed, [], { busy });
    // tcp/IPv4 skips the held port, udp/IPv4 on the same destination and tcp/IPv6 take it.
    expect(ports(specs)).toEqual([PROBE_PORT_MIN + 1, PROBE_PORT_MIN + 2, PROBE_PORT_MIN, PROBE_PORT_MIN, PROBE_PORT_MIN + 1]);
    expect(waiting.size).toBe(0);

    // Every tcp/IPv4 port held: the tcp checks wait, the udp and IPv6 ones still get ports.
    const starved = checkTargets(mixed, [], { busy: heldFor(4, 'tcp', () => true) });
    expect(ports(starved.specs)).toEqual([undefined, undefined, PROBE_PORT_MIN, PROBE_PORT_MIN, PROBE_PORT_MIN + 1]);
    expect([...starved.waiting.keys()]).toEqual(['0:0', '0:1']);
    expect(starved.waiting.get('0:0')).toMatch(
      /^waiting for a probe port: all 4095 free probe ports for 198\.19\.0\.1 port 80 \(tcp\/IPv4/,
    );
  });

  test('more checks to one destination than probe ports: the rest fail, not wait', () => {
    const many = Array.from({ length: PROBE_PORT_MAX - PROBE_PORT_MIN + 2 }, (_, id) =>
      storedBackend(id, `198.18.${Math.floor(id / 250)}.${(id % 250) + 1}`),
    );
    const big: StateFile = { version: 1, vips: [storedVip(0, '198.19.0.1', many, { forwarding: 'dsr', healthCheck })] };
    const { specs, waiting } = checkTargets(big, [], { busy: heldFor(4, 'tcp', () => false) });
    expect(ports(specs).filter((port) => port === undefined)).toHaveLength(1);
    expect(waiting.size).toBe(0);
  });
});

describe('a check waiting for a probe port', () => {
  const wait =
    'waiting for a probe port: all 4096 free probe ports for 127.0.0.1 port 1 (tcp/IPv4, 61440-65535) are held by other processes on the LB';

  test('keeps its health however long every port it could take is held: a local user starving it of ports is no backend failure', async () => {
    vi.useFakeTimers();
    try {
      const health = new HealthMonitor(undefined, 300);
      closers.push(() => health.close());
      const changes: HealthChange[] = [];
      health.on('change', (change) => changes.push(change));
      health.busyPorts.setWaiting(new Map([['0:0', wait]]));
      const spec = viaVip({ intervalMs: 100, fall: 1 });
      delete spec.localPort;
      health.sync(new Map([['0:0', spec]]), 'up');

      await vi.advanceTimersByTimeAsync(100 * 300);
      expect(health.status('0:0')).toMatchObject({ health: 'up', reason: wait, lastFailure: null });
      expect(changes).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** A socket another process could hold on 127.0.0.1 (TCP listener or UDP socket, no SO_REUSEADDR), and its port. */
async function holdOn(transport: Transport): Promise<{ port: number; release: () => Promise<void> }> {
  if (transport === 'udp') {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const release = () => new Promise<void>((resolve) => socket.close(resolve));
    return { port: socket.address().port, release };
  }
  const listener = net.createServer().listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const release = () => new Promise<void>((resolve) => listener.close(() => resolve()));
  return { port: (listener.address() as net.AddressInfo).port, release };
}

describe('busy probe ports', () => {
  test.each(['tcp', 'udp'] as const)(
    '%s: a trial bind fails on a held port, for that transport only, and binds once it is let go',
    async (transport) => {
      const { port, release } = await holdOn(transport);
      const socket: ProbeSocket = { family: 4, transport, port, address: '127.0.0.1' };
      expect(await trialBind(socket)).toBe(false);
      expect(await trialBind({ ...socket, transport: transport === 'tcp' ? 'udp' : 'tcp' })).toBe(true);
      expect(await trialBind({ ...socket, family: 6, address: '::1' })).toBe(true);
      await release();
      expect(await trialBind(socket)).toBe(true);
    },
  );

  test('a retry forgets the ports let go and says so; the warning counts the held ones per family and transport', async () => {
    const tcp = await holdOn('tcp');
    const udp = await holdOn('udp');
    const busy = new BusyPorts();
    closers.push(() => busy.close());
    busy.add({ family: 4, transport: 'tcp', port: tcp.port, address: '127.0.0.1' });
    busy.add({ family: 4, transport: 'udp', port: udp.port, address: '127.0.0.1' });
    busy.setWaiting(new Map([['0:0', 'waiting']]));
    expect(busy.warnings()).toEqual([
      'other processes on the LB hold 2 of the health-check probe ports 61440-65535 (tcp/IPv4 1, udp/IPv4 1): ' +
        'via-vip checks do not probe from them, and 1 wait for a free one',
    ]);
    let freed = 0;
    busy.on('freed', () => freed++);
    expect(await busy.retry()).toBe(0);
    expect(freed).toBe(0);

    await tcp.release();
    expect(await busy.retry()).toBe(1);
    expect(freed).toBe(1);
    expect(busy.has(4, 'tcp', tcp.port)).toBe(false);
    expect(busy.has(4, 'udp', udp.port)).toBe(true);

    await udp.release();
    expect(await busy.retry()).toBe(1);
    expect(busy.size).toBe(0);
    expect(busy.warnings()).toEqual([]);
  });

  test('xlb preflight counts the probe ports a trial bind finds held, per family and transport', async () => {
    expect(await heldProbePortsNote(async () => true)).toBeNull();
    const tried = new Set<string>();
    const note = await heldProbePortsNote(async ({ family, transport, port }) => {
      tried.add(`${transport}/IPv${family} ${port}`);
      return !((family === 6 && transport === 'udp' && port < PROBE_PORT_MIN + 3) || (family === 4 && port === PROBE_PORT_MAX));
    });
    expect(tried.size).toBe(4 * 4096);
    expect(note).toBe(
      'other processes on the LB hold 5 of the health-check probe ports 61440-65535 (tcp/IPv4 1, udp/IPv4 1, udp/IPv6 3): ' +
        'via-vip checks cannot probe from them',
    );
  });

  test('a retry tries at most a batch, the longest untried first', async () => {
    const tried: number[] = [];
    const busy = new BusyPorts(async ({ port }) => {
      tried.push(port);
      return false;
    });
    closers.push(() => busy.close());
    for (let port = PROBE_PORT_MIN; port < PROBE_PORT_MIN + 5; port++) busy.add({ family: 4, transport: 'tcp', port });
    await busy.retry(3);
    await busy.retry(3);
    expect(tried).toEqual([61440, 61441, 61442, 61443, 61444, 61440]);
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
