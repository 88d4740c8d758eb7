/**
 * Forwarding through BPF_PROG_TEST_RUN: every registered mode forwards, dsr and ipip output
 * bytes (headers and checksums), and the ICMP reply for a packet too big for the tunnel.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { IPPROTO_UDP } from '../control/dataplane/codec.js';
import { forwardingModes } from '../control/forwarding/registry.js';
import { BalancerFixture, IP, MAC } from './lib/fixture.js';
import { backendMac, backendNumber, backends4, backends6, dsrRewrite, flow4, flow6, tcp4, tcp6, udp4, udp6 } from './lib/frames.js';
import {
  checksum,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  ipv6ExtensionHeader,
  l4ChecksumOk,
  parseEthernet,
  parseIp,
  PROTO,
  tcp,
  u32be,
  XDP,
} from './lib/packet.js';

let f: BalancerFixture;
afterEach(() => f?.close());

describe('every registered forwarding mode', () => {
  test.each([...forwardingModes.values()].map((mode) => [mode.name, mode.code]))(
    '%s (code %i): the balancer forwards it and counts the VIP and backend traffic',
    (_, code) => {
      f = new BalancerFixture();
      f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: code, backends: backends4(1) });
      const frame = tcp4();
      expect(f.run(frame).verdict).toBe(XDP.TX);
      const outcomes = Object.keys(f.counterDelta());
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]).toMatch(/^tx_(?!icmp_)/);
      expect(f.dp.vipStats(1)).toMatchObject({ packets: 1, bytes: frame.length });
      expect(f.dp.backendStats(f.ringBackend(1, flow4()))).toEqual({ packets: 1, bytes: frame.length });
    },
  );
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
    return ethernet(
      o.nextHopMac,
      MAC.lb,
      ETH_P_IP,
      ipv4({
        src: o.source ?? IP.source4,
        dst: backend,
        protocol: PROTO.IPIP,
        payload: innerIp.subarray(0, parsed.totalLength),
        tos: parsed.tos,
        df: parsed.df,
        ttl: 64,
      }),
    );
  }

  function expectedOuter6(inner: Buffer, backend: string, flowLabel: number, o: { source?: string; nextHopMac: string }): Buffer {
    const innerIp = inner.subarray(14);
    const parsed = parseIp(innerIp);
    return ethernet(
      o.nextHopMac,
      MAC.lb,
      ETH_P_IPV6,
      ipv6({
        src: o.source ?? IP.source6,
        dst: backend,
        nextHeader: parsed.version === 4 ? PROTO.IPIP : PROTO.IPV6,
        payload: innerIp.subarray(0, parsed.totalLength),
        trafficClass: parsed.tos,
        flowLabel,
        hopLimit: 64,
      }),
    );
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
    expect(data).toEqual(
      expectedOuter6(frame, IP.backend6(backendNumber(backend)), label, { nextHopMac: MAC.backend(backendNumber(backend)) }),
    );
    expect(l4ChecksumOk(parseIp(parseIp(data.subarray(14)).payload))).toBe(true);
    expect(f.counterDelta()).toEqual({ tx_ipip: 1 });
  });

  test('IPv4 in IPv6 for an IPv4 VIP with IPv6 backends', () => {
    f.addVip({ id: 3, address: IP.vip4, port: 80, forwarding: 'ipip', backends: backends6(3) });
    const frame = tcp4({ ip: { tos: 0x10 } });
    const backend = f.ringBackend(3, flow4());
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    expect(data).toEqual(
      expectedOuter6(frame, IP.backend6(backendNumber(backend)), f.hash(flow4()) & 0xfffff, {
        nextHopMac: MAC.backend(backendNumber(backend)),
      }),
    );
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
        expect(data).toEqual(
          expectedOuter4(frame, IP.backend4(backendNumber(backend)), { source, nextHopMac: MAC.backend(backendNumber(backend)) }),
        );
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
      expect(data).toEqual(
        expectedOuter6(frame, IP.backend6(backendNumber(backend)), hash & 0xfffff, {
          source,
          nextHopMac: MAC.backend(backendNumber(backend)),
        }),
      );
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
    const expected = ethernet(
      MAC.client,
      MAC.lb,
      ETH_P_IP,
      ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: icmp(3, 4, Buffer.from([0, 0, 0x05, 0xc8]), quote) }),
    );
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
    const expected = ethernet(
      MAC.client,
      MAC.lb,
      ETH_P_IPV6,
      ipv6({
        src: IP.vip6,
        dst: IP.client6,
        nextHeader: PROTO.ICMPV6,
        hopLimit: 64,
        payload: icmpv6({ src: IP.vip6, dst: IP.client6 }, 2, 0, u32be(1460), quote),
      }),
    );
    expect(data).toEqual(expected);
    expect(l4ChecksumOk(parseIp(data.subarray(14)))).toBe(true);
    expect(f.counterDelta()).toEqual({ tx_icmp_too_big: 1 });
  });
});
