/**
 * The balancer's parsing, packet by packet through BPF_PROG_TEST_RUN: traffic that is not
 * for a VIP passes untouched; malformed, truncated and fragmented VIP traffic is dropped.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BalancerFixture, IP, MAC } from './lib/fixture.js';
import { backends4, backends6, tcp4, tcp6, tcp6BehindExtensionHeaders, udp4, udp6 } from './lib/frames.js';
import {
  echoRest,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  icmp,
  ipv4,
  type Ipv4Options,
  ipv6,
  ipv6ExtensionHeader,
  ipv6FragmentHeader,
  PROTO,
  tcp,
  udp,
  XDP,
} from './lib/packet.js';

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
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IP,
          ipv4({ src: IP.client4, dst: IP.other4, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(1, 1), Buffer.from('ping')) }),
        ),
      'pass_not_vip',
    ],
    [
      'GRE to another address',
      () =>
        ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst: IP.other4, protocol: PROTO.GRE, payload: Buffer.alloc(8) })),
      'pass_not_vip',
    ],
    ['an IPv4 fragment to another address', () => tcp4({ dst: IP.other4, ip: { mf: true } }), 'pass_fragment'],
    [
      'an IPv6 fragment to another address',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({
            src: IP.client6,
            dst: IP.other6,
            nextHeader: PROTO.FRAGMENT,
            payload: ipv6FragmentHeader(PROTO.UDP, Buffer.alloc(16), 0, true),
          }),
        ),
      'pass_fragment',
    ],
    [
      'IPv6 to another address behind more extension headers than the walk takes',
      () => tcp6BehindExtensionHeaders(5, IP.other6),
      'pass_not_vip',
    ],
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
    [
      'IPv6 version 4 in an IPv6 frame',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.TCP, payload: Buffer.alloc(20), version: 4 }),
        ),
      'drop_malformed_ip',
    ],
    [
      'IPv6 payload length beyond the frame',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.TCP, payload: Buffer.alloc(20), payloadLength: 900 }),
        ),
      'drop_malformed_ip',
    ],
    [
      'IPv6 extension header cut short',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.HOPOPTS, payload: Buffer.alloc(1) }),
        ),
      'drop_malformed_ip',
    ],
    [
      'IPv6 extension header longer than the payload',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({ src: IP.client6, dst: IP.vip6, nextHeader: PROTO.DSTOPTS, payload: Buffer.from([PROTO.TCP, 4, 0, 0, 0, 0, 0, 0]) }),
        ),
      'drop_malformed_ip',
    ],
    ['IPv6 to a VIP address behind more extension headers than the walk takes', () => tcp6BehindExtensionHeaders(5), 'drop_malformed_ip'],
    ['TCP header cut short', () => ip4({}, tcpHeader(5, 12)), 'drop_malformed_l4'],
    ['TCP data offset 4', () => ip4({}, tcpHeader(4)), 'drop_malformed_l4'],
    ['TCP data offset beyond the segment', () => ip4({}, tcpHeader(15)), 'drop_malformed_l4'],
    ['UDP header cut short', () => ip4({ protocol: PROTO.UDP }, Buffer.alloc(6)), 'drop_malformed_l4'],
    [
      'UDP length under 8',
      () => ip4({ protocol: PROTO.UDP }, udp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 53, length: 7 })),
      'drop_malformed_l4',
    ],
    [
      'UDP length beyond the IP payload',
      () => ip4({ protocol: PROTO.UDP }, udp({ src: IP.client4, dst: IP.vip4, sport: 1, dport: 53, length: 200 })),
      'drop_malformed_l4',
    ],
    ['ICMP header cut short', () => ip4({ protocol: PROTO.ICMP }, Buffer.from([8, 0, 0, 0])), 'drop_malformed_l4'],
    ['IPv4 header checksum wrong (TCP to a VIP)', () => ip4({ checksum: 0x1234 }), 'drop_malformed_ip'],
    [
      'IPv4 header checksum wrong (echo to a VIP)',
      () => ip4({ protocol: PROTO.ICMP, checksum: 0x1234 }, icmp(8, 0, echoRest(1, 1), Buffer.alloc(8))),
      'drop_malformed_ip',
    ],
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

describe('fragments to VIP addresses are dropped (README: Fragments)', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends6(2) });
  });

  test.each([
    ['an IPv4 first fragment', () => udp4({ ip: { mf: true } })],
    [
      'an IPv4 later fragment',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IP,
          ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.UDP, fragmentOffset: 185, payload: Buffer.alloc(100) }),
        ),
    ],
    [
      'an IPv6 fragment',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({
            src: IP.client6,
            dst: IP.vip6,
            nextHeader: PROTO.FRAGMENT,
            payload: ipv6FragmentHeader(PROTO.UDP, udp({ src: IP.client6, dst: IP.vip6, sport: 1, dport: 53 }), 0, true),
          }),
        ),
    ],
    [
      'an IPv6 fragment behind a hop-by-hop header',
      () =>
        ethernet(
          MAC.lb,
          MAC.client,
          ETH_P_IPV6,
          ipv6({
            src: IP.client6,
            dst: IP.vip6,
            nextHeader: PROTO.HOPOPTS,
            payload: ipv6ExtensionHeader(PROTO.FRAGMENT, ipv6FragmentHeader(PROTO.UDP, Buffer.alloc(16), 100)),
          }),
        ),
    ],
  ])('%s', (_, build) => {
    expect(f.run(build()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_fragment: 1 });
  });

  test('other protocols to a VIP address are dropped, not passed to the host', () => {
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.GRE, payload: Buffer.alloc(8) }),
    );
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });
});
