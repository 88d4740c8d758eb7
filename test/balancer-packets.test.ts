/**
 * The balancer, packet by packet, through BPF_PROG_TEST_RUN: verdict, exact output
 * bytes (headers and checksums) and outcome counters for every path.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { flowHash } from '../control/dataplane/hash.js';
import { parseAddress, parseMac } from '../control/dataplane/address.js';
import { ABI_VERSION, BACKEND_F_UNHEALTHY, IPPROTO_TCP, IPPROTO_UDP, OUTCOMES, VIP_F_NO_CONNTRACK, VIP_F_SOURCE_AFFINITY } from '../control/dataplane/codec.js';
import { BalancerFixture, type BackendSpec, flowKey, type Flow, IP, MAC } from './lib/fixture.js';
import {
  addr,
  checksum,
  echoRest,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  icmp,
  icmpv6,
  ipv4,
  type Ipv4Options,
  ipv6,
  ipv6ExtensionHeader,
  ipv6FragmentHeader,
  l4ChecksumOk,
  parseEthernet,
  parseIp,
  PROTO,
  tcp,
  u32be,
  udp,
  XDP,
} from './lib/packet.js';

/* Backend records are per (VIP, backend): VIP v's backend n gets id 10v + n. */
const backends4 = (vipId: number, macs = true): BackendSpec[] =>
  [1, 2, 3].map((n) => ({ id: vipId * 10 + n, address: IP.backend4(n), mac: macs ? MAC.backend(n) : undefined }));
const backends6 = (vipId: number, macs = true): BackendSpec[] =>
  [1, 2, 3].map((n) => ({ id: vipId * 10 + n, address: IP.backend6(n), mac: macs ? MAC.backend(n) : undefined }));
const backendMac = (id: number) => MAC.backend(id % 10);
const backendNumber = (id: number) => id % 10;

interface FrameOptions {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  payload?: Buffer;
  ip?: Partial<Ipv4Options>;
  flags?: string;
}

function tcp4(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client4;
  const dst = o.dst ?? IP.vip4;
  const segment = tcp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 80, payload: o.payload, flags: o.flags });
  return ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src, dst, protocol: PROTO.TCP, payload: segment, ...o.ip }));
}

function udp4(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client4;
  const dst = o.dst ?? IP.vip4;
  const datagram = udp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 53, payload: o.payload ?? Buffer.from('query') });
  return ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src, dst, protocol: PROTO.UDP, payload: datagram, ...o.ip }));
}

function tcp6(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client6;
  const dst = o.dst ?? IP.vip6;
  const segment = tcp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 80, payload: o.payload, flags: o.flags });
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src, dst, nextHeader: PROTO.TCP, payload: segment }));
}

function udp6(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client6;
  const dst = o.dst ?? IP.vip6;
  const datagram = udp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 53, payload: o.payload ?? Buffer.from('query') });
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src, dst, nextHeader: PROTO.UDP, payload: datagram }));
}

/** TCP to port 80 behind `count` destination-options headers (the walk takes 4). */
function tcp6BehindExtensionHeaders(count: number, dst = IP.vip6): Buffer {
  let payload = tcp({ src: IP.client6, dst, sport: 40000, dport: 80 });
  for (let i = 0; i < count; i++) payload = ipv6ExtensionHeader(i === 0 ? PROTO.TCP : PROTO.DSTOPTS, payload);
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst, nextHeader: PROTO.DSTOPTS, payload }));
}

const flow4 = (sport = 40000, dport = 80, proto = IPPROTO_TCP): Flow => ({ src: IP.client4, dst: IP.vip4, sport, dport, proto });
const flow6 = (sport = 40000, dport = 80, proto = IPPROTO_TCP): Flow => ({ src: IP.client6, dst: IP.vip6, sport, dport, proto });

/** The frame as DSR leaves it: backend MAC, our MAC, nothing else changed. */
function dsrRewrite(frame: Buffer, backendMacText: string): Buffer {
  return ethernet(backendMacText, MAC.lb, frame.readUInt16BE(12), frame.subarray(14));
}

let f: BalancerFixture;
afterEach(() => f?.close());

describe('non-VIP traffic passes untouched', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
  });

  test.each([
    ['ARP', () => ethernet('ff:ff:ff:ff:ff:ff', MAC.client, ETH_P_ARP, Buffer.alloc(28, 1)), 'pass_non_ip'],
    ['VLAN-tagged', () => ethernet(MAC.lb, MAC.client, 0x8100, Buffer.alloc(46, 2)), 'pass_non_ip'],
    ['IPv4 TCP to another address', () => tcp4({ dst: IP.other4 }), 'pass_not_vip'],
    ['IPv4 TCP to the VIP address on another port', () => tcp4({ dport: 8080 }), 'pass_not_vip'],
    ['IPv4 UDP to a TCP VIP port', () => udp4({ dport: 80 }), 'pass_not_vip'],
    ['IPv6 TCP to another address', () => tcp6({ dst: IP.other6 }), 'pass_not_vip'],
    ['IPv6 UDP to another address', () => udp6({ dst: IP.other6 }), 'pass_not_vip'],
    [
      'IPv4 ICMP echo to another address',
      () => ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.other4, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(1, 1), Buffer.from('ping')) })),
      'pass_not_vip',
    ],
    [
      'GRE to another address',
      () => ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.other4, protocol: PROTO.GRE, payload: Buffer.alloc(8) })),
      'pass_not_vip',
    ],
    ['an IPv4 fragment to another address', () => tcp4({ dst: IP.other4, ip: { mf: true } }), 'pass_fragment'],
    [
      'an IPv6 fragment to another address',
      () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.other6, nextHeader: PROTO.FRAGMENT, payload: ipv6FragmentHeader(PROTO.UDP, Buffer.alloc(16), 0, true) })),
      'pass_fragment',
    ],
    ['IPv6 to another address behind more extension headers than the walk takes', () => tcp6BehindExtensionHeaders(5, IP.other6), 'pass_not_vip'],
  ])('%s', (_, build, outcome) => {
    const frame = build();
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.PASS);
    expect(data).toEqual(frame);
    expect(f.counterDelta()).toEqual({ [outcome]: 1 });
  });
});

describe('malformed and truncated packets are dropped, never forwarded', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 0, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 0, proto: 'udp', forwarding: 'dsr', backends: backends4(2) });
    f.addVip({ id: 3, address: IP.vip6, port: 0, forwarding: 'dsr', backends: backends6(3) });
  });

  const ip4 = (o: Partial<Ipv4Options>, payload = tcp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 80 })) =>
    ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.TCP, payload, ...o }));
  const tcpHeader = (dataOffset: number, length = 20) =>
    tcp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 80, dataOffset }).subarray(0, length);

  test.each([
    ['Ethernet header only', () => ethernet(MAC.lb, MAC.client, ETH_P_IP, Buffer.alloc(0)), 'drop_malformed_ip'],
    ['IPv4 header cut short', () => ip4({}).subarray(0, 14 + 12), 'drop_malformed_ip'],
    ['IPv4 version 5', () => ip4({ version: 5 }), 'drop_malformed_ip'],
    ['IPv4 IHL 4', () => ip4({ ihl: 4 }), 'drop_malformed_ip'],
    ['IPv4 IHL beyond the packet', () => ip4({ ihl: 15 }, Buffer.alloc(0)), 'drop_malformed_ip'],
    ['IPv4 total length beyond the frame', () => ip4({ totalLength: 1400 }), 'drop_malformed_ip'],
    ['IPv4 total length under the header', () => ip4({ totalLength: 16 }), 'drop_malformed_ip'],
    ['IPv6 header cut short', () => tcp6().subarray(0, 14 + 30), 'drop_malformed_ip'],
    ['IPv6 version 4 in an IPv6 frame', () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.TCP, payload: Buffer.alloc(20), version: 4 })), 'drop_malformed_ip'],
    ['IPv6 payload length beyond the frame', () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.TCP, payload: Buffer.alloc(20), payloadLength: 900 })), 'drop_malformed_ip'],
    [
      'IPv6 extension header cut short',
      () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.HOPOPTS, payload: Buffer.alloc(1) })),
      'drop_malformed_ip',
    ],
    [
      'IPv6 extension header longer than the payload',
      () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.DSTOPTS, payload: Buffer.from([PROTO.TCP, 4, 0, 0, 0, 0, 0, 0]) })),
      'drop_malformed_ip',
    ],
    ['IPv6 to a VIP address behind more extension headers than the walk takes', () => tcp6BehindExtensionHeaders(5), 'drop_malformed_ip'],
    ['TCP header cut short', () => ip4({}, tcpHeader(5, 12)), 'drop_malformed_l4'],
    ['TCP data offset 4', () => ip4({}, tcpHeader(4)), 'drop_malformed_l4'],
    ['TCP data offset beyond the segment', () => ip4({}, tcpHeader(15)), 'drop_malformed_l4'],
    ['UDP header cut short', () => ip4({ protocol: PROTO.UDP }, Buffer.alloc(6)), 'drop_malformed_l4'],
    ['UDP length under 8', () => ip4({ protocol: PROTO.UDP }, udp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 53, length: 7 })), 'drop_malformed_l4'],
    ['UDP length beyond the IP payload', () => ip4({ protocol: PROTO.UDP }, udp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 53, length: 200 })), 'drop_malformed_l4'],
    ['ICMP header cut short', () => ip4({ protocol: PROTO.ICMP }, Buffer.from([8, 0, 0, 0])), 'drop_malformed_l4'],
    ['IPv4 header checksum wrong (TCP to a VIP)', () => ip4({ checksum: 0x1234 }), 'drop_malformed_ip'],
    ['IPv4 header checksum wrong (echo to a VIP)', () => ip4({ protocol: PROTO.ICMP, checksum: 0x1234 }, icmp(8, 0, echoRest(1, 1), Buffer.alloc(8))), 'drop_malformed_ip'],
  ])('%s', (_, build, outcome) => {
    const { verdict } = f.run(build());
    expect(verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ [outcome]: 1 });
  });

  test('a short frame with Ethernet padding beyond the IP length is still forwarded', () => {
    const frame = Buffer.concat([tcp4({ dport: 80 }), Buffer.alloc(6)]);
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data.subarray(12)).toEqual(frame.subarray(12));
    expect(f.counterDelta()).toEqual({ tx_dsr: 1 });
  });
});

describe('dsr forwarding', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends4(2) });
    f.addVip({ id: 3, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(3) });
    f.addVip({ id: 4, address: IP.vip6, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends6(4) });
  });

  test.each([
    ['IPv4 TCP', () => tcp4(), 1, flow4()],
    ['IPv4 UDP', () => udp4(), 2, flow4(40000, 53, IPPROTO_UDP)],
    ['IPv6 TCP', () => tcp6(), 3, flow6()],
    ['IPv6 UDP', () => udp6(), 4, flow6(40000, 53, IPPROTO_UDP)],
  ])('%s: MACs rewritten to the hashed backend, IP and L4 bytes untouched', (_, build, vipId, flow) => {
    const frame = build();
    const backend = f.ringBackend(vipId, flow);
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(dsrRewrite(frame, backendMac(backend)));
    expect(f.counterDelta()).toEqual({ tx_dsr: 1 });
    expect(f.dp.vipStats(vipId)).toMatchObject({ packets: 1, bytes: frame.length, flow_misses: 1, flow_hits: 0 });
    expect(f.dp.backendStats(backend)).toEqual({ packets: 1, bytes: frame.length });
  });

  test('IPv4 options are carried untouched', () => {
    const options = Buffer.from([0x01, 0x01, 0x01, 0x00, 0x44, 0x04, 0x05, 0x00]); // NOP NOP NOP EOL, timestamp
    const frame = tcp4({ ip: { options } });
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(dsrRewrite(frame, backendMac(f.ringBackend(1, flow4()))));
  });

  test('IPv6 hop-by-hop and destination options are walked to find TCP', () => {
    const segment = tcp({ src: IP.client6, dst: IP.vip6, sport: 40000, dport: 80 });
    const payload = ipv6ExtensionHeader(PROTO.DSTOPTS, ipv6ExtensionHeader(PROTO.TCP, segment, 1));
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.HOPOPTS, payload }));
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(dsrRewrite(frame, backendMac(f.ringBackend(3, flow6()))));
  });

  test('a port-0 VIP takes every port; a specific port on the same address wins', () => {
    f.addVip({ id: 5, address: IP.vip4, port: 0, forwarding: 'dsr', backends: [{ id: 7, address: IP.backend4(7), mac: MAC.backend(7) }] });
    const anyPort = f.run(tcp4({ dport: 4444 }));
    expect(parseEthernet(anyPort.data).dst).toBe(MAC.backend(7));
    const port80 = f.run(tcp4({ dport: 80 }));
    expect(parseEthernet(port80.data).dst).toBe(backendMac(f.ringBackend(1, flow4())));
    expect(f.counterDelta()).toEqual({ tx_dsr: 2 });
  });

  test('a backend without a MAC cannot take dsr traffic', () => {
    f.addVip({ id: 6, address: IP.vip4, port: 81, forwarding: 'dsr', backends: backends4(6, false) });
    expect(f.run(tcp4({ dport: 81 })).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_no_route: 1 });
  });

  test('dsr never changes packet size, so no MTU check applies', () => {
    const frame = tcp4({ payload: Buffer.alloc(1460), ip: { df: true } });
    expect(f.run(frame).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 1 });
  });
});

describe('ipip forwarding', () => {
  function expectedOuter4(inner: Buffer, backend: string, o: { source?: string; nextHopMac: string }): Buffer {
    const innerIp = inner.subarray(14);
    const parsed = parseIp(innerIp);
    return ethernet(o.nextHopMac, MAC.lb, ETH_P_IP, ipv4({ src: o.source ?? IP.source4, dst: backend, protocol: PROTO.IPIP, payload: innerIp.subarray(0, parsed.totalLength), tos: parsed.tos, df: parsed.df, ttl: 64 }));
  }

  function expectedOuter6(inner: Buffer, backend: string, flowLabel: number, o: { source?: string; nextHopMac: string }): Buffer {
    const innerIp = inner.subarray(14);
    const parsed = parseIp(innerIp);
    return ethernet(o.nextHopMac, MAC.lb, ETH_P_IPV6, ipv6({ src: o.source ?? IP.source6, dst: backend, nextHeader: parsed.version === 4 ? PROTO.IPIP : PROTO.IPV6, payload: innerIp.subarray(0, parsed.totalLength), trafficClass: parsed.tos, flowLabel, hopLimit: 64 }));
  }

  beforeEach(() => {
    f = new BalancerFixture();
  });

  test('IPv4 in IPv4: exact outer header, valid checksum, inner untouched', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends4(1) });
    const frame = tcp4({ ip: { tos: 0x28, df: true }, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') });
    const backend = f.ringBackend(1, flow4());
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(expectedOuter4(frame, IP.backend4(backendNumber(backend)), { nextHopMac: MAC.backend(backendNumber(backend)) }));
    const outer = parseIp(data.subarray(14));
    expect(outer.headerChecksumOk).toBe(true);
    expect(l4ChecksumOk(parseIp(outer.payload))).toBe(true);
    expect(f.counterDelta()).toEqual({ tx_ipip: 1 });
    expect(f.dp.backendStats(backend)).toEqual({ packets: 1, bytes: frame.length });
  });

  test('IPv4 UDP in IPv4 with IP options inside', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'ipip', backends: backends4(1) });
    const frame = udp4({ ip: { options: Buffer.from([1, 1, 1, 0]) } });
    const backend = f.ringBackend(1, flow4(40000, 53, IPPROTO_UDP));
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(expectedOuter4(frame, IP.backend4(backendNumber(backend)), { nextHopMac: MAC.backend(backendNumber(backend)) }));
  });

  test('IPv6 in IPv6: exact outer header with the flow hash as flow label', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends6(2) });
    const frame = tcp6();
    const backend = f.ringBackend(2, flow6());
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const label = f.hash(flow6()) & 0xfffff;
    expect(data).toEqual(expectedOuter6(frame, IP.backend6(backendNumber(backend)), label, { nextHopMac: MAC.backend(backendNumber(backend)) }));
    expect(l4ChecksumOk(parseIp(parseIp(data.subarray(14)).payload))).toBe(true);
    expect(f.counterDelta()).toEqual({ tx_ipip: 1 });
  });

  test('IPv4 in IPv6 for an IPv4 VIP with IPv6 backends', () => {
    f.addVip({ id: 3, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends6(3) });
    const frame = tcp4({ ip: { tos: 0x10 } });
    const backend = f.ringBackend(3, flow4());
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(expectedOuter6(frame, IP.backend6(backendNumber(backend)), f.hash(flow4()) & 0xfffff, { nextHopMac: MAC.backend(backendNumber(backend)) }));
    expect(parseIp(data.subarray(14)).protocol).toBe(PROTO.IPIP);
  });

  test('an IPv6 VIP cannot be carried to an IPv4 backend', () => {
    f.addVip({ id: 4, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends4(4) });
    expect(f.run(tcp6()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_no_route: 1 });
  });

  test('a backend without a MAC of its own is reached through the gateway MAC', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends4(1, false) });
    const backend = f.ringBackend(1, flow4());
    const { data } = f.run(tcp4());
    expect(data).toEqual(expectedOuter4(tcp4(), IP.backend4(backendNumber(backend)), { nextHopMac: MAC.gateway }));
  });

  test('no backend MAC and no gateway MAC: dropped as no route', () => {
    f.close();
    f = new BalancerFixture({ config: { gatewayMac: Buffer.alloc(6) } });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends4(1, false) });
    expect(f.run(tcp4()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_no_route: 1 });
  });

  test('outer IPv4 source varies its low bits with the flow for receive-side scaling, on table hits too', () => {
    f.close();
    f = new BalancerFixture({ config: { sourceV4FlowBits: 8 } });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends4(1) });
    const sources = new Set<string>();
    for (const sport of [40000, 40001, 40002, 40003]) {
      const backend = f.ringBackend(1, flow4(sport));
      const source = `198.18.0.${f.hash(flow4(sport)) & 0xff}`;
      // The first packet is a table miss, the second a hit: both carry the flow's source.
      for (const frame of [tcp4({ sport }), tcp4({ sport, flags: 'A' })]) {
        const { data } = f.run(frame);
        expect(data).toEqual(expectedOuter4(frame, IP.backend4(backendNumber(backend)), { source, nextHopMac: MAC.backend(backendNumber(backend)) }));
      }
      sources.add(source);
    }
    expect(sources.size).toBeGreaterThan(1);
  });

  test('outer IPv6 source varies its low bits with the flow', () => {
    f.close();
    f = new BalancerFixture({ config: { sourceV6FlowBits: 16 } });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends6(2) });
    const hash = f.hash(flow6());
    const backend = f.ringBackend(2, flow6());
    const source = `2001:db8::${(hash & 0xffff).toString(16)}`;
    // A table miss, then a hit: the same source and flow label.
    for (const frame of [tcp6(), tcp6({ flags: 'A' })]) {
      const { data } = f.run(frame);
      expect(data).toEqual(expectedOuter6(frame, IP.backend6(backendNumber(backend)), hash & 0xfffff, { source, nextHopMac: MAC.backend(backendNumber(backend)) }));
    }
  });
});

describe('MTU: too big for the tunnel', () => {
  beforeEach(() => {
    f = new BalancerFixture({ config: { mtu: 1500 } });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends6(2) });
  });

  function expectFragNeeded(frame: Buffer, headerBytes: number) {
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const quote = frame.subarray(14, 14 + headerBytes + 8);
    const expected = ethernet(MAC.client, MAC.lb, ETH_P_IP, ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: icmp(3, 4, Buffer.from([0, 0, 0x05, 0xc8]), quote) }));
    expect(data).toEqual(expected);
    expect(checksum(parseIp(data.subarray(14)).payload)).toBe(0);
    expect(f.counterDelta()).toEqual({ tx_icmp_too_big: 1 });
  }

  test('IPv4 with DF over MTU gets frag-needed with next-hop MTU 1480 and the quoted header', () => {
    expectFragNeeded(tcp4({ payload: Buffer.alloc(1461), ip: { df: true } }), 20);
  });

  test('the quote keeps IPv4 options', () => {
    expectFragNeeded(tcp4({ payload: Buffer.alloc(1461), ip: { df: true, options: Buffer.from([1, 1, 1, 0, 1, 1, 1, 0]) } }), 28);
  });

  test('exactly at the MTU is still forwarded', () => {
    const frame = tcp4({ payload: Buffer.alloc(1500 - 20 - 20 - 20), ip: { df: true } });
    expect(f.run(frame).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_ipip: 1 });
  });

  test('IPv4 without DF over MTU is dropped: XDP cannot fragment', () => {
    expect(f.run(tcp4({ payload: Buffer.alloc(1461) })).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_too_big: 1 });
  });

  test('IPv6 over MTU gets Packet Too Big with MTU 1460 and a valid checksum', () => {
    const frame = tcp6({ payload: Buffer.alloc(1441) });
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const quote = frame.subarray(14, 14 + 48);
    const expected = ethernet(MAC.client, MAC.lb, ETH_P_IPV6, ipv6({ src: IP.vip6, dst: IP.client6, nextHeader: PROTO.ICMPV6, hopLimit: 64, payload: icmpv6({ src: IP.vip6, dst: IP.client6 }, 2, 0, u32be(1460), quote) }));
    expect(data).toEqual(expected);
    expect(l4ChecksumOk(parseIp(data.subarray(14)))).toBe(true);
    expect(f.counterDelta()).toEqual({ tx_icmp_too_big: 1 });
  });
});

describe('ICMP to VIP addresses', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends6(2) });
  });

  test('IPv4 echo request is answered: addresses and MACs swapped, type 0, checksums valid', () => {
    const request = icmp(8, 0, echoRest(0x1234, 7), Buffer.from('ping payload'));
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, ttl: 57, payload: request }));
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const reply = icmp(0, 0, echoRest(0x1234, 7), Buffer.from('ping payload'));
    expect(data).toEqual(ethernet(MAC.client, MAC.lb, ETH_P_IP, ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: reply })));
    expect(f.counterDelta()).toEqual({ tx_icmp_echo_reply: 1 });
  });

  test('an all-zero IPv4 echo (id 0, sequence 0, no data) is answered with checksum 0xffff, which verifies', () => {
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(0, 0), Buffer.alloc(0)) }));
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const reply = parseIp(parseEthernet(data).payload);
    expect(reply.payload.readUInt16BE(2)).toBe(0xffff);
    expect(l4ChecksumOk(reply)).toBe(true);
    expect(data).toEqual(ethernet(MAC.client, MAC.lb, ETH_P_IP, ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: icmp(0, 0, echoRest(0, 0), Buffer.alloc(0)) })));
  });

  test('IPv6 echo request is answered', () => {
    const addresses = { src: IP.client6, dst: IP.vip6 };
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ ...addresses, nextHeader: PROTO.ICMPV6, hopLimit: 50, payload: icmpv6(addresses, 128, 0, echoRest(9, 1), Buffer.from('abc')) }));
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const back = { src: IP.vip6, dst: IP.client6 };
    expect(data).toEqual(ethernet(MAC.client, MAC.lb, ETH_P_IPV6, ipv6({ ...back, nextHeader: PROTO.ICMPV6, hopLimit: 64, payload: icmpv6(back, 129, 0, echoRest(9, 1), Buffer.from('abc')) })));
    expect(f.counterDelta()).toEqual({ tx_icmp_echo_reply: 1 });
  });

  test('other ICMP types to a VIP address are dropped', () => {
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(13, 0, Buffer.alloc(4), Buffer.alloc(12)) }));
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });

  test('ICMPv6 inside IPv4 to a VIP address is dropped', () => {
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMPV6, payload: Buffer.alloc(8) }));
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });

  /** A router's ICMP error about a packet the backend sent from the VIP to the client. */
  function icmp4Error(type: number, code: number, o: { quotedSrc?: string; quotedSport?: number; quoteBytes?: number } = {}) {
    const quotedSrc = o.quotedSrc ?? IP.vip4;
    const sent = ipv4({ src: quotedSrc, dst: IP.client4, protocol: PROTO.TCP, df: true, payload: tcp({ src: quotedSrc, dst: IP.client4, sport: o.quotedSport ?? 80, dport: 40000, flags: 'A' }) });
    const quote = sent.subarray(0, o.quoteBytes ?? 28);
    return ethernet(MAC.lb, MAC.gateway, ETH_P_IP, ipv4({ src: '198.18.0.254', dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(type, code, Buffer.from([0, 0, 0x05, 0x00]), quote) }));
  }

  test.each([
    ['frag-needed', 3, 4],
    ['port unreachable', 3, 3],
    ['time exceeded', 11, 0],
  ])('IPv4 %s about a VIP flow goes to the backend serving that flow', (_, type, code) => {
    const frame = icmp4Error(type, code);
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(dsrRewrite(frame, backendMac(f.ringBackend(1, flow4()))));
    expect(f.counterDelta()).toEqual({ tx_dsr: 1 });
  });

  test('an ICMP error follows the flow to its connection-table backend, and creates no entry', () => {
    f.run(tcp4());
    const before = f.dp.countFlows();
    const pinned = f.dp.lookupFlow(flowKey(flow4()))!;
    f.setRing(1, [{ id: 9, address: IP.backend4(9), mac: MAC.backend(9) }]);
    expect(parseEthernet(f.run(icmp4Error(3, 4)).data).dst).toBe(backendMac(pinned));
    f.run(icmp4Error(3, 4, { quotedSport: 80 }));
    expect(f.dp.countFlows()).toBe(before);
  });

  test('IPv6 Packet Too Big about a VIP flow is tunnelled to that flow\'s backend', () => {
    const sent = ipv6({ src: IP.vip6, dst: IP.client6, nextHeader: PROTO.TCP, payload: tcp({ src: IP.vip6, dst: IP.client6, sport: 80, dport: 40000, flags: 'A' }) });
    const router = '2001:db8::fe';
    const frame = ethernet(MAC.lb, MAC.gateway, ETH_P_IPV6, ipv6({ src: router, dst: IP.vip6, nextHeader: PROTO.ICMPV6, payload: icmpv6({ src: router, dst: IP.vip6 }, 2, 0, u32be(1280), sent.subarray(0, 48)) }));
    const backend = f.ringBackend(2, flow6());
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const outer = parseIp(data.subarray(14));
    expect(outer.dst).toBe(addr(IP.backend6(backendNumber(backend))));
    expect(outer.payload).toEqual(frame.subarray(14));
    expect(f.counterDelta()).toEqual({ tx_ipip: 1 });
  });

  test.each([
    ['a quote from another address', { quotedSrc: '198.18.0.77' }],
    ['a quote cut before the ports', { quoteBytes: 22 }],
    ['a quote for a port with no VIP', { quotedSport: 8443 }],
  ])('an ICMP error with %s is dropped', (_, o) => {
    expect(f.run(icmp4Error(3, 4, o)).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_malformed_icmp_inner: 1 });
  });
});

describe('fragments to VIP addresses are dropped (README: Fragments)', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends6(2) });
  });

  test.each([
    ['an IPv4 first fragment', () => udp4({ ip: { mf: true } })],
    ['an IPv4 later fragment', () => ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.UDP, fragmentOffset: 185, payload: Buffer.alloc(100) }))],
    ['an IPv6 fragment', () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.FRAGMENT, payload: ipv6FragmentHeader(PROTO.UDP, udp({ src: IP.client6, dst: IP.vip6, sport: 1, dport: 53 }), 0, true) }))],
    ['an IPv6 fragment behind a hop-by-hop header', () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.HOPOPTS, payload: ipv6ExtensionHeader(PROTO.FRAGMENT, ipv6FragmentHeader(PROTO.UDP, Buffer.alloc(16), 100)) }))],
  ])('%s', (_, build) => {
    expect(f.run(build()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_fragment: 1 });
  });

  test('other protocols to a VIP address are dropped, not passed to the host', () => {
    const frame = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.GRE, payload: Buffer.alloc(8) }));
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });
});

describe('connection table', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
  });

  test('a new flow is recorded and its next packet is a table hit', () => {
    const backend = f.ringBackend(1, flow4());
    f.run(tcp4());
    expect(f.dp.lookupFlow(flowKey(flow4()))).toBe(backend);
    f.run(tcp4({ flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ packets: 2, flow_misses: 1, flow_hits: 1 });
  });

  test('an IPv6 flow is recorded (its addresses folded for the bucket) and its next packet is a hit', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
    const backend = f.ringBackend(2, flow6());
    f.run(tcp6());
    expect(f.dp.lookupFlow(flowKey(flow6()))).toBe(backend);
    expect(f.dp.lookupFlow(flowKey(flow6(40001)))).toBeNull();
    f.run(tcp6({ flags: 'A' }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 2, flow_misses: 1, flow_hits: 1 });
  });

  test('IPv6 clients whose addresses XOR-fold alike are still different flows (the source fold is keyed)', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
    // Flipping the same bit in two words keeps the XOR of the address's words.
    const twin = '2001:db8::1:0:11';
    expect(IP.client6).toBe('2001:db8::10');
    f.run(tcp6());
    f.run(tcp6({ src: twin }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 2, flow_misses: 2, flow_hits: 0 });
    expect(f.dp.lookupFlow(flowKey({ ...flow6(), src: twin }))).toBe(f.ringBackend(2, { ...flow6(), src: twin }));
    expect(f.dp.lookupFlow(flowKey(flow6()))).toBe(f.ringBackend(2, flow6()));
  });

  test('established flows keep their backend when the ring changes; new flows follow the new ring', () => {
    const sports = Array.from({ length: 60 }, (_, i) => 30000 + i);
    const first = new Map(sports.map((sport) => [sport, parseEthernet(f.run(tcp4({ sport })).data).dst]));
    const grown = [...backends4(1), ...[4, 5, 6].map((n) => ({ id: 10 + n, address: IP.backend4(n), mac: MAC.backend(n) }))];
    f.setRing(1, grown);
    for (const sport of sports) expect(parseEthernet(f.run(tcp4({ sport, flags: 'A' })).data).dst).toBe(first.get(sport));
    let movedByRing = 0;
    for (let sport = 50000; sport < 50060; sport++) {
      const expected = backendMac(f.ringBackend(1, flow4(sport)));
      expect(parseEthernet(f.run(tcp4({ sport })).data).dst).toBe(expected);
      if ([4, 5, 6].some((n) => expected === MAC.backend(n))) movedByRing++;
    }
    expect(movedByRing).toBeGreaterThan(0);
  });

  test('a removed backend\'s flows are re-hashed onto the ring and re-recorded', () => {
    const sports = Array.from({ length: 40 }, (_, i) => 20000 + i);
    for (const sport of sports) f.run(tcp4({ sport }));
    const victim = f.dp.lookupFlow(flowKey(flow4(sports[0])))!;
    const survivors = backends4(1).filter((b) => b.id !== victim);
    f.dp.removeBackend(victim);
    f.setRing(1, survivors);
    for (const sport of sports) {
      const { data } = f.run(tcp4({ sport, flags: 'A' }));
      expect(parseEthernet(data).dst).not.toBe(MAC.backend(victim));
      expect(f.dp.lookupFlow(flowKey(flow4(sport)))).not.toBe(victim);
    }
  });

  test('a flow whose backend slot now belongs to another VIP is re-hashed', () => {
    f.run(tcp4());
    const pinned = f.dp.lookupFlow(flowKey(flow4()))!;
    // The slot is reused for VIP 2; VIP 1's ring no longer has it.
    f.dp.setBackend(pinned, { family: 4, address: Buffer.alloc(16), mac: Buffer.from([2, 0, 0, 0, 9, 9]), vipId: 2 });
    f.setRing(1, backends4(1).filter((b) => b.id !== pinned));
    const { data } = f.run(tcp4({ flags: 'A' }));
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4())));
  });

  test('flows pinned to a backend marked unhealthy re-hash; drained (unmarked) ones stay', () => {
    const sports = Array.from({ length: 30 }, (_, i) => 21000 + i);
    for (const sport of sports) f.run(tcp4({ sport }));
    const pinned = f.dp.lookupFlow(flowKey(flow4(sports[0])))!;
    const others = backends4(1).filter((b) => b.id !== pinned);
    // Drained: out of the ring, record unchanged: its flows keep going.
    f.setRing(1, others);
    f.dp.setBackend(pinned, { family: 4, address: parseAddress(IP.backend4(backendNumber(pinned))).bytes, mac: parseMac(backendMac(pinned)), vipId: 1 });
    expect(parseEthernet(f.run(tcp4({ sport: sports[0], flags: 'A' })).data).dst).toBe(backendMac(pinned));
    // Unhealthy: the same flow now re-hashes onto the ring.
    f.dp.setBackend(pinned, { family: 4, address: parseAddress(IP.backend4(backendNumber(pinned))).bytes, mac: parseMac(backendMac(pinned)), vipId: 1, flags: BACKEND_F_UNHEALTHY });
    const { data } = f.run(tcp4({ sport: sports[0], flags: 'A' }));
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4(sports[0]))));
    expect(parseEthernet(data).dst).not.toBe(backendMac(pinned));
    expect(f.dp.lookupFlow(flowKey(flow4(sports[0])))).not.toBe(pinned);
  });

  test('a stats snapshot reads every VIP and backend counter in one batch, as single lookups do', () => {
    for (let sport = 5000; sport < 5030; sport++) f.run(tcp4({ sport }));
    const snapshot = f.dp.statsSnapshot();
    expect(snapshot.vip(1)).toEqual(f.dp.vipStats(1));
    expect(snapshot.vip(1)).toMatchObject({ packets: 30, flow_misses: 30 });
    let total = 0;
    for (const b of backends4(1)) {
      expect(snapshot.backend(b.id)).toEqual(f.dp.backendStats(b.id));
      total += snapshot.backend(b.id).packets;
    }
    expect(total).toBe(30);
  });

  test('a VIP with conntrack off records nothing and always follows the ring', () => {
    f.addVip({ id: 2, address: IP.vip4, port: 81, forwarding: 'dsr', flags: VIP_F_NO_CONNTRACK, backends: backends4(2) });
    f.run(tcp4({ dport: 81 }));
    expect(f.dp.lookupFlow(flowKey(flow4(40000, 81)))).toBeNull();
    f.setRing(2, [{ id: 8, address: IP.backend4(8), mac: MAC.backend(8) }]);
    expect(parseEthernet(f.run(tcp4({ dport: 81, flags: 'A' })).data).dst).toBe(MAC.backend(8));
    expect(f.dp.vipStats(2)).toMatchObject({ flow_hits: 0, flow_misses: 0, packets: 2 });
  });

  test('the table holds the flows set at load time; forwarding goes on when it is full', () => {
    f.close();
    f = new BalancerFixture({ maxFlows: 128 });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    for (let sport = 10000; sport < 10600; sport++) expect(f.run(tcp4({ sport })).verdict).toBe(XDP.TX);
    expect(f.dp.countFlows()).toBeLessThanOrEqual(128);
    expect(f.dp.countFlows()).toBeGreaterThan(0);
  });
});

describe('connection table eviction and seeds', () => {
  afterEach(() => f?.close());

  test('a full bucket evicts its least recently used flow, never a busy one', () => {
    f = new BalancerFixture({ maxFlows: 4 }); // one bucket of four ways
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    for (let sport = 1000; sport < 1004; sport++) f.run(tcp4({ sport }));
    f.run(tcp4({ sport: 1000, flags: 'A' })); // the oldest flow is busy again
    f.run(tcp4({ sport: 1004 }));
    f.run(tcp4({ sport: 1005 }));
    const held = (sport: number) => f.dp.lookupFlow(flowKey(flow4(sport))) !== null;
    expect(held(1000)).toBe(true);
    expect([held(1001), held(1002)]).toEqual([false, false]);
    for (let sport = 1003; sport < 1006; sport++) expect(held(sport), `flow ${sport}`).toBe(true);
    expect(f.dp.countFlows()).toBe(4);
    expect(f.dp.flowCapacity).toBe(4);
  });

  test('a full bucket records new flows in its neighbour while that has room, then evicts its own least recently used', () => {
    f = new BalancerFixture({ maxFlows: 8 }); // two buckets, each the other's neighbour
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const sports: number[] = [];
    for (let sport = 1000; sports.length < 9; sport++) if (f.dp.bucketsOfFlow(flowKey(flow4(sport))).bucket === 0) sports.push(sport);
    const held = (sport: number) => f.dp.lookupFlow(flowKey(flow4(sport))) !== null;
    for (const sport of sports.slice(0, 8)) f.run(tcp4({ sport }));
    // Four in bucket 0, four in its neighbour: all held, and the neighbour's still hit.
    expect(sports.slice(0, 8).filter(held)).toEqual(sports.slice(0, 8));
    expect(f.dp.countFlows()).toBe(8);
    for (const sport of sports.slice(4, 8)) f.run(tcp4({ sport, flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ flow_misses: 8, flow_hits: 4 });
    // Both full: a new flow evicts bucket 0's least recently used flow, not a busy one.
    f.run(tcp4({ sport: sports[0], flags: 'A' }));
    f.run(tcp4({ sport: sports[8] }));
    expect([held(sports[0]), held(sports[1]), held(sports[8])]).toEqual([true, false, true]);
    expect(sports.slice(2, 8).every(held)).toBe(true);
  });

  test('the table\'s use is counted in a sample of buckets and scaled to the whole table', () => {
    f = new BalancerFixture({ maxFlows: 4096 }); // 1024 buckets
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    for (let sport = 20000; sport < 22000; sport++) f.run(tcp4({ sport }));
    const held = f.dp.countFlows();
    expect(f.dp.flowTableUse()).toEqual({ slots: 4096, flows: held });
    // A quarter of the buckets holds about a quarter of the flows (2000 at random: within 25%).
    const estimate = f.dp.flowTableUse(256);
    expect(estimate.slots).toBe(4096);
    expect(Math.abs(estimate.flows - held)).toBeLessThan(held / 4);
  });

  test('flows that share an IPv4 fingerprint (same client and ports) but not a VIP never take each other\'s backend', () => {
    f = new BalancerFixture({ maxFlows: 4 }); // one bucket: same client and ports give the same tag and check
    const vip2 = '198.19.0.2';
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: vip2, port: 80, forwarding: 'dsr', backends: backends4(2) });
    const toVip2 = { ...flow4(), dst: vip2 };
    f.run(tcp4());
    expect(f.dp.lookupFlow(flowKey(flow4()))).toBe(f.ringBackend(1, flow4()));
    f.run(tcp4({ dst: vip2, flags: 'A' }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 1, flow_hits: 0, flow_misses: 1 });
    expect(f.dp.backendStats(f.ringBackend(2, toVip2)).packets).toBe(1);
    // The entry (same way) now holds VIP 2's backend; VIP 1's flow misses and is recorded again.
    f.run(tcp4({ flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ packets: 2, flow_hits: 0, flow_misses: 2 });
    expect(f.dp.backendStats(f.ringBackend(1, flow4())).packets).toBe(2);
  });

  test('a new hash seed re-spreads new flows but keeps established ones', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const sports = Array.from({ length: 40 }, (_, i) => 30000 + i);
    const first = new Map(sports.map((sport) => [sport, parseEthernet(f.run(tcp4({ sport })).data).dst]));
    const seed = f.config.hashSeed + 1;
    f.dp.setConfig({ ...f.config, hashSeed: seed });
    const ring = f.dp.getRing(1)!;
    const moved = sports.filter((sport) => backendMac(ring[flowHash(flowKey(flow4(sport)), 0, seed) % f.dp.ringSize]) !== first.get(sport));
    expect(moved.length).toBeGreaterThan(0);
    for (const sport of sports) expect(parseEthernet(f.run(tcp4({ sport, flags: 'A' })).data).dst).toBe(first.get(sport));
  });
});

describe('hashing', () => {
  afterEach(() => f?.close());

  test('source affinity sends every flow of a client to one backend', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', flags: VIP_F_SOURCE_AFFINITY, backends: backends4(1) });
    const macs = new Set<string>();
    for (let sport = 1000; sport < 1040; sport++) macs.add(parseEthernet(f.run(tcp4({ sport })).data).dst);
    expect(macs).toEqual(new Set([backendMac(f.ringBackend(1, flow4(1000)))]));
  });

  test('source affinity on IPv6 too', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip6, port: 80, forwarding: 'dsr', flags: VIP_F_SOURCE_AFFINITY, backends: backends6(1) });
    const macs = new Set<string>();
    for (let sport = 1000; sport < 1020; sport++) macs.add(parseEthernet(f.run(tcp6({ sport })).data).dst);
    expect(macs.size).toBe(1);
  });

  test('flows spread over all backends', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const counts = new Map<string, number>();
    for (let sport = 1000; sport < 1600; sport++) {
      const mac = parseEthernet(f.run(tcp4({ sport })).data).dst;
      counts.set(mac, (counts.get(mac) ?? 0) + 1);
    }
    expect(counts.size).toBe(3);
    for (const c of counts.values()) expect(c).toBeGreaterThan(600 * 0.25);
  });

  test('two nodes with the same seed and config pick the same backends; another seed picks differently', () => {
    const nodes = [0x5eed, 0x5eed, 0xbeef].map((hashSeed) => {
      const node = new BalancerFixture({ config: { hashSeed } });
      node.addVip({ id: 1, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(1) });
      return node;
    });
    try {
      const picks = nodes.map((node) => Array.from({ length: 100 }, (_, i) => parseEthernet(node.run(tcp6({ sport: 2000 + i })).data).dst).join());
      expect(picks[1]).toBe(picks[0]);
      expect(picks[2]).not.toBe(picks[0]);
    } finally {
      for (const node of nodes) node.close();
    }
  });

  test('the default ring size (65537) works end to end', () => {
    f = new BalancerFixture({ ringSize: 65537 });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.dp.getRing(1)!.length).toBe(65537);
    const { data } = f.run(tcp4());
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4())));
  });
});

describe('configuration states', () => {
  test('VIP traffic before the config is written is dropped as not configured', () => {
    f = new BalancerFixture({ configure: false });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_not_configured: 1 });
  });

  test('a VIP whose ring is empty drops its traffic as no backend', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.setRing(1, []);
    expect(f.run(tcp4()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_no_backend: 1 });
  });

  test('a removed VIP stops matching and its address stops being a VIP address', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 443, forwarding: 'dsr', backends: backends4(2) });
    const key = (port: number) => ({ family: 4 as const, address: Buffer.from([198, 19, 0, 1, ...new Array(12).fill(0)]), port, proto: IPPROTO_TCP });
    f.removeVip(1);
    expect(f.dp.removeVip(key(80))).toBe(false);
    expect(f.run(tcp4()).verdict).toBe(XDP.PASS);
    const gre = ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.GRE, payload: Buffer.alloc(8) }));
    expect(f.run(gre).verdict).toBe(XDP.DROP); // 443 still lives on the address
    f.removeVip(2);
    expect(f.run(gre).verdict).toBe(XDP.PASS);
    expect(f.counterDelta()).toEqual({ pass_not_vip: 2, drop_vip_proto: 1 });
  });

  test('a VIP record with a forwarding mode the program does not know is dropped and counted, not forwarded', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 7, backends: backends4(1) });
    const frame = tcp4();
    expect(f.run(frame)).toEqual({ verdict: XDP.DROP, data: frame });
    expect(f.counterDelta()).toEqual({ drop_unknown_forwarding: 1 });
    expect(f.dp.vipStats(1).packets).toBe(0);
  });

  test('every packet lands in exactly one outcome counter', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const frames = [tcp4(), tcp4({ dst: IP.other4 }), tcp4().subarray(0, 30), udp4({ ip: { mf: true } }), tcp6()];
    for (const frame of frames) f.run(frame);
    const delta = f.counterDelta();
    expect(Object.values(delta).reduce((a, b) => a + (b ?? 0), 0)).toBe(frames.length);
  });
});

describe('the per-CPU VIP cache never outlives a VIP change', () => {
  const key4 = (port: number) => ({ family: 4 as const, address: parseAddress(IP.vip4).bytes, port, proto: IPPROTO_TCP });

  test('a changed forwarding method applies to the next packet', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    f.dp.setVip(key4(80), { id: 1, flags: 0, forwarding: 2 /* ipip */ });
    expect(parseEthernet(f.run(tcp4()).data).etherType).toBe(ETH_P_IP);
    expect(f.counterDelta()).toEqual({ tx_dsr: 1, tx_ipip: 1 });
  });

  test('a removed VIP stops matching at once; a new one matches at once', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    f.removeVip(1);
    expect(f.run(tcp4()).verdict).toBe(XDP.PASS);
    f.addVip({ id: 2, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(2) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 2, pass_not_vip: 1 });
  });

  test('an any-port answer cached for a port gives way to a new VIP on that exact port', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 0, forwarding: 'dsr', backends: [{ id: 17, address: IP.backend4(7), mac: MAC.backend(7) }] });
    expect(parseEthernet(f.run(tcp4({ dport: 8080 })).data).dst).toBe(MAC.backend(7));
    f.addVip({ id: 2, address: IP.vip4, port: 8080, forwarding: 'dsr', backends: [{ id: 28, address: IP.backend4(8), mac: MAC.backend(8) }] });
    expect(parseEthernet(f.run(tcp4({ dport: 8080 })).data).dst).toBe(MAC.backend(8));
  });

  test('pinned rings are adopted at the same ring size and replaced at another', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-rings-');
    const config = { hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 };
    const open = (ringSize: number) => TestDataplane.open({ pinDir: dir, ringSize, maxVips: 8, maxBackends: 16, maxFlows: 64 });
    try {
      let dp = open(13);
      dp.setConfig(config);
      dp.setRing(1, new Uint32Array(13).fill(3));
      dp.close();
      dp = open(13);
      expect(dp.getRing(1)).toEqual(new Uint32Array(13).fill(3));
      dp.close();
      dp = open(17);
      try {
        expect(dp.getRing(1)).toBeNull();
        dp.setConfig(config);
        dp.setBackend(4, { family: 4, address: parseAddress(IP.backend4(4)).bytes, mac: parseMac(MAC.backend(4)), vipId: 1 });
        dp.setVip({ family: 4, address: parseAddress(IP.vip4).bytes, port: 80, proto: IPPROTO_TCP }, { id: 1, flags: 0, forwarding: 1 });
        dp.setRing(1, new Uint32Array(17).fill(4));
        expect(parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst).toBe(MAC.backend(4));
      } finally {
        dp.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('pinned maps of another size are made afresh at the new size; maps of the same size are adopted', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-sizes-');
    const open = (sizes: { maxVips?: number; maxFlows?: number } = {}) =>
      TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: sizes.maxVips ?? 8, maxBackends: 16, maxFlows: sizes.maxFlows ?? 64 });
    const config = { hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 };
    const forwarded = (dp: TestDataplane) => parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst;
    let dp = open();
    try {
      dp.setConfig(config);
      dp.setBackend(4, { family: 4, address: parseAddress(IP.backend4(4)).bytes, mac: parseMac(MAC.backend(4)), vipId: 1 });
      dp.setVip({ family: 4, address: parseAddress(IP.vip4).bytes, port: 80, proto: IPPROTO_TCP }, { id: 1, flags: 0, forwarding: 1 });
      dp.setRing(1, new Uint32Array(13).fill(4));
      expect(forwarded(dp)).toBe(MAC.backend(4));
      dp.close();

      dp = open();
      expect(dp.replacedPins).toEqual([]);
      expect(dp.lookupFlow(flowKey(flow4()))).toBe(4);
      dp.close();

      dp = open({ maxFlows: 4096 });
      expect(dp.replacedPins).toEqual([`xlb_flows_v${ABI_VERSION}`]);
      expect(dp.flowCapacity).toBe(4096);
      expect(dp.lookupFlow(flowKey(flow4()))).toBeNull(); // a new, empty table
      expect(forwarded(dp)).toBe(MAC.backend(4)); // VIP, backend and ring adopted
      dp.close();

      dp = open({ maxVips: 16, maxFlows: 4096 });
      expect(dp.replacedPins.sort()).toEqual(['rings', 'vipaddr', 'vips', 'vipstat'].map((map) => `xlb_${map}_v${ABI_VERSION}`));
      expect(dp.getRing(1)).toBeNull();
    } finally {
      dp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a pinned outcome-counter map of a release with fewer outcomes is made afresh', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-outcomes-');
    const name = `xlb_counters_v${ABI_VERSION}`;
    try {
      const entries = String(OUTCOMES.length - 1);
      execFileSync('bpftool', ['map', 'create', `${dir}/${name}`, 'type', 'percpu_array', 'key', '4', 'value', '16', 'entries', entries, 'name', name]);
      const dp = TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
      try {
        expect(dp.replacedPins).toContain(name);
        expect(Object.keys(dp.counters())).toEqual([...OUTCOMES]);
      } finally {
        dp.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('opening with a pin directory unpins maps of other ABI versions, and only those', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-stale-');
    try {
      const pin = (name: string) =>
        execFileSync('bpftool', ['map', 'create', `${dir}/${name}`, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'stale']);
      pin('xlb_flows_v1');
      pin('operator_map');
      const dp = TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
      dp.close();
      const names = readdirSync(dir);
      expect(names).not.toContain('xlb_flows_v1');
      expect(names).toContain('operator_map');
      expect(names).toContain(`xlb_flows_v${ABI_VERSION}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a daemon adopting pinned maps keeps the table keys, so recorded flows still hit', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-keys-');
    // 65,536 buckets: new keys would move the flow to another bucket but by a 2^-16 chance.
    const open = () => TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 1 << 18 });
    const config = { hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 };
    let dp = open();
    try {
      dp.setConfig(config);
      dp.setVip(key4(80), { id: 1, flags: 0, forwarding: 1 });
      for (const n of [1, 2]) dp.setBackend(n, { family: 4, address: parseAddress(IP.backend4(n)).bytes, mac: parseMac(MAC.backend(n)), vipId: 1 });
      dp.setRing(1, new Uint32Array(13).fill(1));
      expect(parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst).toBe(MAC.backend(1));
      dp.close();
      dp = open();
      dp.setConfig(config);
      dp.setRing(1, new Uint32Array(13).fill(2)); // new flows would go to backend 2
      expect(dp.lookupFlow(flowKey(flow4()))).toBe(1);
      expect(parseEthernet(dp.program.testRun({ data: tcp4({ flags: 'A' }) }).data).dst).toBe(MAC.backend(1));
    } finally {
      dp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a daemon adopting pinned maps carries the generation on, so old entries stay dead', () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-cache-');
    const open = () => TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
    const frame = tcp4();
    let dp = open();
    try {
      dp.setConfig({ hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 });
      dp.setVip(key4(80), { id: 1, flags: 0, forwarding: 1 });
      dp.setVip(key4(81), { id: 2, flags: 0, forwarding: 1 });
      dp.setBackend(1, { family: 4, address: parseAddress(IP.backend4(1)).bytes, mac: parseMac(MAC.backend(1)), vipId: 1 });
      dp.setRing(1, new Uint32Array(13).fill(1));
      expect(dp.program.testRun({ data: frame }).retval).toBe(XDP.TX); // cached at the current generation
      dp.close();
      dp = open();
      dp.removeVip(key4(80));
      dp.setVip(key4(82), { id: 3, flags: 0, forwarding: 1 });
      expect(dp.program.testRun({ data: frame }).retval).toBe(XDP.PASS);
    } finally {
      dp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
