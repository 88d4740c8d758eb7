/**
 * A via-vip probe's origin and route: it binds the LB's source of its VIP's family (the
 * balancer knows a looped probe by it), fails saying so when the LB has none, and a
 * failure whose route leaves by another interface than the XDP one names that route.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { SWITCH_CHECK } from './lib/switch-check.js';
import { routeDevice, routeGetArgs, routeLookupAllowed, routeProblem } from '../../control/checks/probe-route.js';
import { checkTargets } from '../../control/controller/targets.js';
import { probeOrigin } from '../../control/daemon/probe-origin.js';
import { parseAddress } from '../../control/net/address.js';
import { type CheckSpec, probe } from '../../control/health/checker.js';
import { PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import type { StateFile } from '../../control/state/schema.js';

const NOT_HELD = { v4: null, v6: null };
const ORIGIN = { iface: 'eth0', v4: '198.18.0.2', v6: null, held: NOT_HELD };

/** A dsr VIP at `address` with one backend at `backend`, checked via vip or direct. */
function state(address: string, backend: string, via: 'vip' | 'direct'): StateFile {
  const vip = { protocol: 'tcp' as const, address, port: 80, forwarding: 'dsr', affinity: 'flow' as const, conntrack: true };
  const healthCheck = { type: SWITCH_CHECK, intervalMs: 60_000, via };
  return {
    version: 1,
    vips: [{ ...vip, panicThreshold: 0.5, id: 0, healthCheck, backends: [{ address: backend, weight: 1, state: 'active', id: 0 }] }],
  };
}

describe('the route a probe takes', () => {
  test('the interface of an `ip -j route get` answer', () => {
    const answer = [{ dst: '198.19.0.4', gateway: '198.18.5.2', dev: 'eth1', prefsrc: '198.18.5.1', flags: [], uid: 0, cache: [] }];
    expect(routeDevice(JSON.stringify(answer))).toBe('eth1');
    expect(routeDevice('[]')).toBeNull();
    expect(routeDevice('{}')).toBeNull();
  });

  test('the lookup asks for the probe\u2019s own packets: source, protocol and ports, as policy rules may route by them', () => {
    const flow = { address: '198.19.0.4', source: '198.18.0.2', protocol: 'udp', sport: 61440, dport: 53 } as const;
    expect(routeGetArgs(flow)).toEqual([
      '-j',
      'route',
      'get',
      '198.19.0.4',
      'from',
      '198.18.0.2',
      'ipproto',
      'udp',
      'sport',
      '61440',
      'dport',
      '53',
    ]);
    expect(routeGetArgs({ ...flow, source: undefined, sport: undefined })).toEqual([
      '-j',
      'route',
      'get',
      '198.19.0.4',
      'ipproto',
      'udp',
      'dport',
      '53',
    ]);
  });

  test('a route out of another interface is the problem, named; the XDP interface or no route is none', () => {
    expect(routeProblem('198.19.0.1', 'eth1', 'eth0')).toBe('route to 198.19.0.1 leaves via eth1, not eth0');
    expect(routeProblem('2001:db8:f::1', 'lo', 'eth0')).toBe('route to 2001:db8:f::1 leaves via lo, not eth0');
    expect(routeProblem('198.19.0.1', 'eth0', 'eth0')).toBeNull();
    expect(routeProblem('198.19.0.1', null, 'eth0')).toBeNull();
  });
});

describe('where a probe leaves from', () => {
  test('a via-vip probe binds the LB source of its family and checks the XDP interface; a direct one neither', () => {
    expect(checkTargets(state('198.19.0.1', '198.18.0.11', 'vip'), [], { origin: ORIGIN }).specs.get('0:0')).toMatchObject({
      localAddress: '198.18.0.2',
      probeInterface: 'eth0',
    });
    const direct = checkTargets(state('198.19.0.1', '198.18.0.11', 'direct'), [], { origin: ORIGIN }).specs.get('0:0')!;
    expect([direct.localAddress, direct.probeInterface]).toEqual([undefined, undefined]);
  });

  test('the daemon\u2019s origin: the balancer\u2019s configured sources, an unset (all-zero) one none', () => {
    expect(probeOrigin('eth0', parseAddress('198.18.0.2').bytes, Buffer.alloc(16), NOT_HELD)).toEqual(ORIGIN);
    expect(probeOrigin('eth0', Buffer.alloc(16), parseAddress('2001:db8::2').bytes, NOT_HELD)).toEqual({
      iface: 'eth0',
      v4: null,
      v6: '2001:db8::2',
      held: NOT_HELD,
    });
  });

  test('without a source of the VIP family the probe fails saying so', async () => {
    const spec = checkTargets(state('2001:db8:f::1', '2001:db8::11', 'vip'), [], { origin: ORIGIN }).specs.get('0:0')!;
    expect(spec.localAddress).toBeNull();
    expect(await probe(spec)).toBe(
      'the LB has no IPv6 source address (--source-v6 or one on the XDP interface) for the probe to bind through dsr to 2001:db8::11',
    );
  });
});

describe('each check type binds the source it is given', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });
  /** A via-vip spec to 127.0.0.1:`port` from 127.0.0.7 and a probe port of its own. */
  const fromOwnSource = (type: string, port: number, n: number, options: object): CheckSpec => ({
    type,
    address: '127.0.0.1',
    port,
    via: 'vip',
    backend: '127.0.0.1',
    forwarding: 'dsr',
    localPort: PROBE_PORT_MIN + ((process.pid * 3 + n) % 4000),
    localAddress: '127.0.0.7',
    intervalMs: 1000,
    timeoutMs: 1000,
    rise: 1,
    fall: 1,
    ...options,
  });

  test('tcp and http', async () => {
    const peers: (string | undefined)[] = [];
    const server = http.createServer((request, response) => {
      peers.push(request.socket.remoteAddress);
      response.end();
    });
    server.on('connection', (socket) => peers.push(socket.remoteAddress));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const { port } = server.address() as AddressInfo;
    expect(await probe(fromOwnSource('tcp', port, 0, {}))).toBeNull();
    expect(await probe(fromOwnSource('http', port, 1, { path: '/', expectStatus: 200 }))).toBeNull();
    expect(peers).toEqual(['127.0.0.7', '127.0.0.7', '127.0.0.7']);
  });

  test('udp', async () => {
    const socket = dgram.createSocket('udp4');
    closers.push(() => socket.close());
    const peers: string[] = [];
    socket.on('message', (payload, peer) => {
      peers.push(peer.address);
      socket.send(payload, peer.port, peer.address);
    });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    expect(await probe(fromOwnSource('udp', socket.address().port, 2, { send: 'ping' }))).toBeNull();
    expect(peers).toEqual(['127.0.0.7']);
  });
});

test('route lookups are bounded to five a second, however many probes fail', () => {
  const second = 1_000_000_000;
  const allowed = Array.from({ length: 8 }, (_, i) => routeLookupAllowed(second + i));
  expect(allowed).toEqual([true, true, true, true, true, false, false, false]);
  expect(routeLookupAllowed(second + 1000)).toBe(true);
});
