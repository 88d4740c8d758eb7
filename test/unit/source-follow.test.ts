/**
 * The LB's sources following its interface: which of the interface's addresses a
 * source can be, a followed source moving only when the interface loses it, a given
 * one never moving, and the holds a missing or foreign source puts on its family's
 * via-vip probes (and only on those).
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, test } from 'vitest';
import { eventText } from '../../control/controller/event-text.js';
import { probeHolds } from '../../control/controller/probe-holds.js';
import type { ProbeOrigin } from '../../control/controller/options.js';
import type { CheckSpec } from '../../control/health/checker.js';
import type { DataplaneConfig } from '../../control/dataplane/records.js';
import {
  bindableInterfaces,
  followedSource,
  type Interfaces,
  readSources,
  SourceFollower,
  sourceCandidates,
  unbindableV6,
} from '../../control/daemon/source-follow.js';
import { parseAddress } from '../../control/net/address.js';

/** An interface address as os.networkInterfaces() lists it. */
function address(text: string, scopeid = 0, internal = false): NetworkInterfaceInfo {
  const common = { address: text, netmask: '', mac: '00:00:00:00:00:00', internal, cidr: null };
  return text.includes(':') ? { ...common, family: 'IPv6', scopeid } : { ...common, family: 'IPv4' };
}

const interfaces = (eth0: string[], others: string[] = []): Interfaces => ({
  lo: [address('127.0.0.1', 0, true), address('::1', 0, true)],
  eth0: eth0.map((a) => address(a, a.startsWith('fe80') ? 2 : 0)),
  eth1: others.map((a) => address(a)),
});

const FOLLOWED = { v4: false, v6: false };
const NO_V4 = "waiting for the LB's IPv4 source: eth0 has no global IPv4 address and --source-v4 is not given";
const NO_V6 = "waiting for the LB's IPv6 source: eth0 has no global IPv6 address and --source-v6 is not given";

describe('following the interface', () => {
  test('a source is one of its global addresses: not link-local, not another interface’s', () => {
    expect(sourceCandidates(interfaces(['169.254.1.1', '198.18.0.2', 'fe80::1', '2001:0db8::2'], ['198.18.9.9']), 'eth0')).toEqual({
      v4: ['198.18.0.2'],
      v6: ['2001:db8::2'],
    });
    expect(sourceCandidates(interfaces([]), 'eth9')).toEqual({ v4: [], v6: [] });
  });

  test('an IPv6 address in or failed duplicate address detection is no source and not the host’s', () => {
    const ifInet6 = [
      '20010db8000000000000000000000002 04 40 00 80     eth0', // permanent
      '20010db8000000000000000000000012 04 40 00 c8     eth0', // permanent, tentative, dadfailed
      '20010db8000000000000000000000013 04 40 00 c0     eth0', // permanent, tentative
      '20010db8000000000000000000000014 04 40 00 a0     eth0', // permanent, deprecated: still bindable
      'fe8000000000000000fc00fffe000001 04 40 20 80     eth0',
    ].join('\n');
    const unbindable = unbindableV6(ifInet6);
    expect([...unbindable]).toEqual(['2001:db8::12', '2001:db8::13']);
    const seen = bindableInterfaces(interfaces(['198.18.0.2', '2001:db8::12', '2001:db8::13', '2001:db8::14', '2001:db8::2']), unbindable);
    expect(sourceCandidates(seen, 'eth0')).toEqual({ v4: ['198.18.0.2'], v6: ['2001:db8::14', '2001:db8::2'] });
    expect(readSources({ v4: null, v6: '2001:db8::12' }, { v4: false, v6: true }, 'eth0', seen).held.v6).toBe(
      "waiting for the LB's IPv6 source: --source-v6 2001:db8::12 is not an address of this host",
    );
  });

  test('the current source stays while the interface keeps it; gone, the first address takes over; none left, none', () => {
    expect(followedSource('198.18.0.2', ['198.18.0.7', '198.18.0.2'])).toBe('198.18.0.2');
    expect(followedSource('198.18.0.2', ['198.18.0.7', '198.18.0.8'])).toBe('198.18.0.7');
    expect(followedSource(null, ['198.18.0.7'])).toBe('198.18.0.7');
    expect(followedSource('198.18.0.2', [])).toBeNull();
  });

  test('each family on its own: a re-addressed IPv4 moves, IPv6 stays; a family without an address is held saying so', () => {
    const start = { v4: '198.18.0.2', v6: '2001:db8::2' };
    expect(readSources(start, FOLLOWED, 'eth0', interfaces(['198.18.0.7', '2001:db8::2']))).toEqual({
      sources: { v4: '198.18.0.7', v6: '2001:db8::2' },
      held: { v4: null, v6: null },
    });
    expect(readSources(start, FOLLOWED, 'eth0', interfaces(['2001:db8::2', 'fe80::1']))).toEqual({
      sources: { v4: null, v6: '2001:db8::2' },
      held: { v4: NO_V4, v6: null },
    });
    expect(readSources({ v4: null, v6: null }, FOLLOWED, 'eth0', interfaces([])).held).toEqual({ v4: NO_V4, v6: NO_V6 });
  });

  test('a given source never moves; while the host does not have it, its family is held naming it', () => {
    const given = { v4: true, v6: false };
    const start = { v4: '198.18.0.99', v6: '2001:db8::2' };
    expect(readSources(start, given, 'eth0', interfaces(['198.18.0.2', '2001:db8::2']))).toEqual({
      sources: start,
      held: { v4: "waiting for the LB's IPv4 source: --source-v4 198.18.0.99 is not an address of this host", v6: null },
    });
    // Any interface of the host will do (a loopback address for ipip, say).
    expect(readSources(start, given, 'eth0', interfaces(['198.18.0.2', '2001:db8::2'], ['198.18.0.99'])).held).toEqual({
      v4: null,
      v6: null,
    });
  });
});

/** The balancer's config but for `overrides`: no gateway MAC, no sources. */
const testConfig = (overrides: Partial<DataplaneConfig>): DataplaneConfig => ({
  hashSeed: 1,
  mtu: 1500,
  gatewayMac: Buffer.alloc(6),
  sourceV4: Buffer.alloc(16),
  sourceV6: Buffer.alloc(16),
  sourceV4FlowBits: 0,
  sourceV6FlowBits: 0,
  flowIdleTimeout: 900,
  ...overrides,
});

describe('SourceFollower', () => {
  const bytes = (text: string) => parseAddress(text).bytes;
  /** A follower over `read`'s interfaces, and what it wrote and told the controller. */
  function follower(read: () => Interfaces, config: DataplaneConfig, given = FOLLOWED) {
    const written: DataplaneConfig[] = [];
    const origins: ProbeOrigin[] = [];
    const events: unknown[] = [];
    const controller = {
      setProbeOrigin: (origin: ProbeOrigin) => origins.push(origin),
      publish: (event: unknown) => events.push(event),
      status: () => ({ attached: true, attachReason: null }),
    };
    const sources = new SourceFollower({ iface: 'eth0', given, config, dp: { setConfig: (c) => written.push(c) }, read });
    return { sources, check: () => sources.check(controller as never), written, origins, events };
  }

  test('a re-addressed interface: the config keeps all but the sources, the origin and a link event follow', () => {
    let now = interfaces(['198.18.0.2', '2001:db8::2']);
    const config = testConfig({ hashSeed: 7, sourceV4: bytes('198.18.0.2'), sourceV6: bytes('2001:db8::2') });
    const f = follower(() => now, config);
    expect(f.sources.origin).toEqual({ iface: 'eth0', v4: '198.18.0.2', v6: '2001:db8::2', held: { v4: null, v6: null } });
    f.check();
    expect([f.written, f.origins, f.events]).toEqual([[], [], []]);

    now = interfaces(['198.18.0.7', '2001:db8::2']);
    f.check();
    expect(f.written).toEqual([{ ...config, sourceV4: bytes('198.18.0.7'), sourceV6: bytes('2001:db8::2') }]);
    expect(f.origins).toEqual([{ iface: 'eth0', v4: '198.18.0.7', v6: '2001:db8::2', held: { v4: null, v6: null } }]);
    const moved = { type: 'link', iface: 'eth0', attached: true, reason: null, sources: { v4: '198.18.0.7', v6: '2001:db8::2' } } as const;
    expect(f.events).toEqual([moved]);
    expect(eventText({ ...moved, id: 1, at: '' })).toBe('sources follow eth0: IPv4 198.18.0.7, IPv6 2001:db8::2');
  });

  test('a given source that appears on the host: its probes are released, nothing is written', () => {
    let now = interfaces(['198.18.0.2']);
    const f = follower(() => now, testConfig({ sourceV4: bytes('198.18.0.99') }), { v4: true, v6: false });
    expect(f.sources.warnings()).toEqual([
      '--source-v4 198.18.0.99 is not an address of this host: its via-vip health checks are held until it is',
    ]);
    now = interfaces(['198.18.0.2', '198.18.0.99']);
    f.check();
    expect(f.written).toEqual([]);
    expect(f.events).toEqual([]);
    expect(f.origins.map((o) => o.held)).toEqual([{ v4: null, v6: NO_V6 }]);
    expect(f.sources.warnings()).toEqual([]);
  });

  test('a followed source the interface loses is warned of until it has one again; one it never had is not', () => {
    let now = interfaces(['198.18.0.2']);
    const f = follower(() => now, testConfig({ sourceV4: bytes('198.18.0.2') }));
    expect(f.sources.warnings()).toEqual([]);
    now = interfaces([]);
    f.check();
    expect(f.sources.warnings()).toEqual([
      'eth0 has no global IPv4 address any more: via-vip health checks of IPv4 VIPs are held until it has one',
    ]);
    now = interfaces(['198.18.0.3']);
    f.check();
    expect(f.sources.warnings()).toEqual([]);
  });
});

describe('the probe holds', () => {
  const spec = (address: string, via: 'vip' | 'direct') => ({ address, via }) as CheckSpec;
  const origin: ProbeOrigin = { iface: 'eth0', v4: null, v6: '2001:db8::2', held: { v4: NO_V4, v6: null } };
  const holds = probeHolds({ probeOrigin: origin }, () => new Map());

  test('a via-vip probe of a held family is held for its reason; a direct one is not; the other family waits for its backend', () => {
    expect(holds('0:0', spec('198.19.0.1', 'vip'))).toBe(NO_V4);
    expect(holds('0:0', spec('198.19.0.1', 'direct'))).toBeNull();
    expect(holds('0:0', spec('2001:db8:f::1', 'vip'))).toBe('waiting to probe: the backend is not in the data plane yet');
  });
});
