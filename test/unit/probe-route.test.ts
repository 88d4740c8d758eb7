/**
 * A via-vip probe's origin and route: it binds the LB's source of its VIP's family (the
 * balancer knows a looped probe by it), fails saying so when the LB has none, and a
 * failure whose route leaves by another interface than the XDP one names that route.
 */
import { describe, expect, test } from 'vitest';
import { SWITCH_CHECK } from './lib/switch-check.js';
import { routeDevice, routeProblem } from '../../control/checks/probe-route.js';
import { checkTargets } from '../../control/controller/targets.js';
import { probe } from '../../control/health/checker.js';
import type { StateFile } from '../../control/state/schema.js';

const ORIGIN = { iface: 'eth0', v4: '198.18.0.2', v6: null };

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

  test('a route out of another interface is the problem, named; the XDP interface or no route is none', () => {
    expect(routeProblem('198.19.0.1', 'eth1', 'eth0')).toBe(
      'route to 198.19.0.1 leaves via eth1, not eth0: the probe cannot pass the probe program',
    );
    expect(routeProblem('2001:db8:f::1', 'lo', 'eth0')).toBe(
      'route to 2001:db8:f::1 leaves via lo, not eth0: the probe cannot pass the probe program',
    );
    expect(routeProblem('198.19.0.1', 'eth0', 'eth0')).toBeNull();
    expect(routeProblem('198.19.0.1', null, 'eth0')).toBeNull();
  });
});

describe('where a probe leaves from', () => {
  test('a via-vip probe binds the LB source of its family and checks the XDP interface; a direct one neither', () => {
    expect(checkTargets(state('198.19.0.1', '198.18.0.11', 'vip'), [], ORIGIN).specs.get('0:0')).toMatchObject({
      localAddress: '198.18.0.2',
      probeInterface: 'eth0',
    });
    const direct = checkTargets(state('198.19.0.1', '198.18.0.11', 'direct'), [], ORIGIN).specs.get('0:0')!;
    expect([direct.localAddress, direct.probeInterface]).toEqual([undefined, undefined]);
  });

  test('without a source of the VIP family the probe fails saying so', async () => {
    const spec = checkTargets(state('2001:db8:f::1', '2001:db8::11', 'vip'), [], ORIGIN).specs.get('0:0')!;
    expect(spec.localAddress).toBeNull();
    expect(await probe(spec)).toBe(
      'the LB has no IPv6 source address (--source-v6 or one on the XDP interface) for the probe to bind through dsr to 2001:db8::11',
    );
  });
});
