/**
 * ICMP to VIP addresses through BPF_PROG_TEST_RUN: echo replies, and ICMP errors about a
 * VIP flow sent to the backend serving it.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BalancerFixture, flowKey, IP, MAC } from './lib/fixture.js';
import { backendMac, backendNumber, backends4, backends6, dsrRewrite, flow4, flow6, tcp4 } from './lib/frames.js';
import {
  addr,
  echoRest,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
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

describe('ICMP to VIP addresses', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends6(2) });
  });

  test('IPv4 echo request is answered: addresses and MACs swapped, type 0, checksums valid', () => {
    const request = icmp(8, 0, echoRest(0x1234, 7), Buffer.from('ping payload'));
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, ttl: 57, payload: request }),
    );
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const reply = icmp(0, 0, echoRest(0x1234, 7), Buffer.from('ping payload'));
    expect(data).toEqual(
      ethernet(MAC.client, MAC.lb, ETH_P_IP, ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: reply })),
    );
    expect(f.counterDelta()).toEqual({ tx_icmp_echo_reply: 1 });
  });

  test('an all-zero IPv4 echo (id 0, sequence 0, no data) is answered with checksum 0xffff, which verifies', () => {
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(0, 0), Buffer.alloc(0)) }),
    );
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const reply = parseIp(parseEthernet(data).payload);
    expect(reply.payload.readUInt16BE(2)).toBe(0xffff);
    expect(l4ChecksumOk(reply)).toBe(true);
    expect(data).toEqual(
      ethernet(
        MAC.client,
        MAC.lb,
        ETH_P_IP,
        ipv4({ src: IP.vip4, dst: IP.client4, protocol: PROTO.ICMP, ttl: 64, payload: icmp(0, 0, echoRest(0, 0), Buffer.alloc(0)) }),
      ),
    );
  });

  test('IPv6 echo request is answered', () => {
    const addresses = { src: IP.client6, dst: IP.vip6 };
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IPV6,
      ipv6({
        ...addresses,
        nextHeader: PROTO.ICMPV6,
        hopLimit: 50,
        payload: icmpv6(addresses, 128, 0, echoRest(9, 1), Buffer.from('abc')),
      }),
    );
    const { verdict, data } = f.run(frame);
    expect(verdict).toBe(XDP.TX);
    const back = { src: IP.vip6, dst: IP.client6 };
    expect(data).toEqual(
      ethernet(
        MAC.client,
        MAC.lb,
        ETH_P_IPV6,
        ipv6({ ...back, nextHeader: PROTO.ICMPV6, hopLimit: 64, payload: icmpv6(back, 129, 0, echoRest(9, 1), Buffer.from('abc')) }),
      ),
    );
    expect(f.counterDelta()).toEqual({ tx_icmp_echo_reply: 1 });
  });

  test('other ICMP types to a VIP address are dropped', () => {
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(13, 0, Buffer.alloc(4), Buffer.alloc(12)) }),
    );
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });

  test('ICMPv6 inside IPv4 to a VIP address is dropped', () => {
    const frame = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMPV6, payload: Buffer.alloc(8) }),
    );
    expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_vip_proto: 1 });
  });

  /** A router's ICMP error about a packet the backend sent from the VIP to the client. */
  function icmp4Error(
    type: number,
    code: number,
    o: { quotedSrc?: string; quotedSport?: number; quotedDport?: number; quoteBytes?: number } = {},
  ) {
    const quotedSrc = o.quotedSrc ?? IP.vip4;
    const sent = ipv4({
      src: quotedSrc,
      dst: IP.client4,
      protocol: PROTO.TCP,
      df: true,
      payload: tcp({ src: quotedSrc, dst: IP.client4, sport: o.quotedSport ?? 80, dport: o.quotedDport ?? 40000, flags: 'A' }),
    });
    const quote = sent.subarray(0, o.quoteBytes ?? 28);
    return ethernet(
      MAC.lb,
      MAC.gateway,
      ETH_P_IP,
      ipv4({ src: '198.18.0.254', dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(type, code, Buffer.from([0, 0, 0x05, 0x00]), quote) }),
    );
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

  test('an ICMP error follows the flow to its connection-table backend, and creates no entry, state or new flow', () => {
    f.run(tcp4());
    f.run(tcp4({ flags: 'A' }));
    const before = f.dp.countFlows();
    const pinned = f.dp.lookupFlow(flowKey(flow4()))!;
    f.setRing(1, [{ id: 9, address: IP.backend4(9), mac: MAC.backend(9) }]);
    expect(parseEthernet(f.run(icmp4Error(3, 4)).data).dst).toBe(backendMac(pinned));
    const misses = f.dp.vipStats(1).flow_misses;
    expect(f.run(icmp4Error(3, 4, { quotedDport: 40001 })).verdict).toBe(XDP.TX); // a flow the table does not hold
    expect(f.dp.countFlows()).toBe(before);
    // An error quoting no recorded flow counts as no new flow (the flood watch counts those).
    expect(f.dp.vipStats(1).flow_misses).toBe(misses);
    expect(f.dp.findFlow(flowKey(flow4()))?.state).toBe('established');
  });

  test("IPv6 Packet Too Big about a VIP flow is tunnelled to that flow's backend", () => {
    const sent = ipv6({
      src: IP.vip6,
      dst: IP.client6,
      nextHeader: PROTO.TCP,
      payload: tcp({ src: IP.vip6, dst: IP.client6, sport: 80, dport: 40000, flags: 'A' }),
    });
    const router = '2001:db8::fe';
    const frame = ethernet(
      MAC.lb,
      MAC.gateway,
      ETH_P_IPV6,
      ipv6({
        src: router,
        dst: IP.vip6,
        nextHeader: PROTO.ICMPV6,
        payload: icmpv6({ src: router, dst: IP.vip6 }, 2, 0, u32be(1280), sent.subarray(0, 48)),
      }),
    );
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
