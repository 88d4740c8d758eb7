/**
 * The tc egress program xlb_probe through BPF_PROG_TEST_RUN: a health-check probe from
 * a reserved local port leaves as the balancer would forward a client's packet of its
 * flow to the backend its entry names, stamped with the time it was sent on
 * (xlb_probe_sent_v1, on the clock process.hrtime.bigint() reads); other packets are
 * left untouched with TC_ACT_UNSPEC (the next egress filter classifies them); a
 * reserved-port packet to a VIP address without an entry is dropped, unstamped. A
 * probe leaves with IP TTL / hop limit 1 (the inner header for ipip), so a backend that
 * would forward it instead of taking it drops it.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FORWARD_DSR, FORWARD_IPIP, IPPROTO_TCP, IPPROTO_UDP, PROBE_PORT_MIN } from '../control/dataplane/codec.js';
import type { ProbeKey } from '../control/dataplane/probes.js';
import { parseAddress } from '../control/net/address.js';
import { type BackendSpec, BalancerFixture, IP, MAC } from './lib/fixture.js';
import { backends4, backends6, dsrRewrite, tcp4, tcp6, udp4, udp6 } from './lib/frames.js';
import { checksum, ETH_P_IP, ethernet, parseEthernet, parseIp, PROTO, XDP } from './lib/packet.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
/** TC_ACT_UNSPEC (-1) as the test run's unsigned return value: the next egress filter decides. */
const TC_ACT_UNSPEC = 0xffffffff;

let f: BalancerFixture;
beforeEach(() => {
  f = new BalancerFixture();
});
afterEach(() => f.close());

/** The frame as the LB's stack sends it: to the route's next hop (the gateway), from the LB. */
const sentByLb = (frame: Buffer) => ethernet(MAC.gateway, MAC.lb, frame.readUInt16BE(12), frame.subarray(14));

/** `frame` with IP TTL / hop limit 1 and, for IPv4, the header checksum recomputed: the probe as xlb_probe sends it on. */
function hopLimited(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  if (out.readUInt16BE(12) !== ETH_P_IP) {
    out[14 + 7] = 1;
    return out;
  }
  out[14 + 8] = 1;
  out.writeUInt16BE(0, 14 + 10);
  out.writeUInt16BE(checksum(out.subarray(14, 14 + (out[14]! & 0xf) * 4)), 14 + 10);
  return out;
}

/** The IP header after the Ethernet header of `frame` has hop limit 1 and, for IPv4, a valid checksum. */
function expectHopLimit1(frame: Buffer): void {
  expect(parseIp(parseEthernet(frame).payload)).toMatchObject({ ttl: 1, headerChecksumOk: true });
}

function runProbeProgram(frame: Buffer): { verdict: number; data: Buffer } {
  const { retval, data } = f.dp.probeProgram.testRun({ data: frame });
  return { verdict: retval, data };
}

/** An entry sending probes to `vip`:`port` from `localPort` to backend record `backendId`. */
function setProbe(vip: string, port: number, localPort: number, backendId: number, forwarding: number, proto = IPPROTO_TCP): void {
  f.dp.setProbes([{ ...keyOf(vip, port, localPort, proto), backendId, forwarding }]);
}

function keyOf(vip: string, port: number, localPort: number, proto = IPPROTO_TCP): ProbeKey {
  const { family, bytes } = parseAddress(vip);
  return { family, address: bytes, port, proto, localPort };
}

/** Runs the program on `frame` and expects the probe of `key` stamped during the run (by the test's own clock). */
function expectStampedBy(key: ProbeKey, frame: Buffer): { verdict: number; data: Buffer } {
  const before = process.hrtime.bigint();
  const result = runProbeProgram(frame);
  const after = process.hrtime.bigint();
  const sent = f.dp.probeSentAt(key);
  expect(sent).not.toBeNull();
  expect(sent! >= before && sent! <= after, `stamp ${sent} within ${before}..${after}`).toBe(true);
  return result;
}

describe('packets that are not probes', () => {
  test("an ordinary connection to a VIP is left unchanged to the filters after xlb's", () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const frame = sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN - 1 }));
    expect(runProbeProgram(frame)).toEqual({ verdict: TC_ACT_UNSPEC, data: frame });
  });

  test("a reserved local port to an address that is no VIP is left unchanged to the filters after xlb's", () => {
    const frame = sentByLb(tcp4({ src: IP.source4, dst: IP.other4, sport: PROBE_PORT_MIN }));
    expect(runProbeProgram(frame)).toEqual({ verdict: TC_ACT_UNSPEC, data: frame });
  });

  test('a reserved local port to a VIP address without a probe entry is dropped', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    setProbe(IP.vip4, 80, PROBE_PORT_MIN, 12, FORWARD_DSR);
    expect(runProbeProgram(sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN + 1 }))).verdict).toBe(TC_ACT_SHOT);
    expect(runProbeProgram(sentByLb(tcp4({ src: IP.source4, sport: 65535 }))).verdict).toBe(TC_ACT_SHOT);
    expect(f.dp.probeSentAt(keyOf(IP.vip4, 80, PROBE_PORT_MIN + 1))).toBeNull();
    expect(runProbeProgram(sentByLb(tcp6({ src: IP.source6, sport: PROBE_PORT_MIN }))).verdict).toBe(TC_ACT_UNSPEC); // no IPv6 VIP
  });
});

describe('dsr probes', () => {
  test('TCP and UDP: the backend its entry names as the destination MAC, TTL 1, nothing else changed; each stamped by its key', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    setProbe(IP.vip4, 80, PROBE_PORT_MIN, 12, FORWARD_DSR);
    const frame = sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN, flags: 'S' }));
    const sent = expectStampedBy(keyOf(IP.vip4, 80, PROBE_PORT_MIN), frame);
    expect(sent).toEqual({ verdict: TC_ACT_OK, data: dsrRewrite(hopLimited(frame), MAC.backend(2)) });
    expectHopLimit1(sent.data);
    const first = f.dp.probeSentAt(keyOf(IP.vip4, 80, PROBE_PORT_MIN))!;
    expectStampedBy(keyOf(IP.vip4, 80, PROBE_PORT_MIN), frame);
    expect(f.dp.probeSentAt(keyOf(IP.vip4, 80, PROBE_PORT_MIN))!).toBeGreaterThan(first);

    setProbe(IP.vip4, 53, PROBE_PORT_MIN + 7, 13, FORWARD_DSR, IPPROTO_UDP);
    const datagram = sentByLb(udp4({ src: IP.source4, sport: PROBE_PORT_MIN + 7, dport: 53 }));
    expect(expectStampedBy(keyOf(IP.vip4, 53, PROBE_PORT_MIN + 7, IPPROTO_UDP), datagram)).toEqual({
      verdict: TC_ACT_OK,
      data: dsrRewrite(hopLimited(datagram), MAC.backend(3)),
    });
    expect(f.dp.probeSentAt(keyOf(IP.vip4, 53, PROBE_PORT_MIN + 7, IPPROTO_TCP))).toBeNull();
  });

  test('IPv6 TCP and UDP: the backend its entry names as the destination MAC, hop limit 1, nothing else changed', () => {
    f.addVip({ id: 1, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(1) });
    for (const [frame, key, backendId] of [
      [sentByLb(tcp6({ src: IP.source6, sport: PROBE_PORT_MIN, flags: 'S' })), keyOf(IP.vip6, 80, PROBE_PORT_MIN), 12],
      [sentByLb(udp6({ src: IP.source6, sport: PROBE_PORT_MIN + 7 })), keyOf(IP.vip6, 53, PROBE_PORT_MIN + 7, IPPROTO_UDP), 13],
    ] as const) {
      f.dp.setProbes([{ ...key, backendId, forwarding: FORWARD_DSR }]);
      const mac = MAC.backend(backendId % 10);
      const sent = expectStampedBy(key, frame);
      expect(sent).toEqual({ verdict: TC_ACT_OK, data: dsrRewrite(hopLimited(frame), mac) });
      expectHopLimit1(sent.data);
    }
  });

  test('a backend record without a MAC cannot take the probe: dropped, unstamped', () => {
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1, false) });
    setProbe(IP.vip4, 80, PROBE_PORT_MIN, 12, FORWARD_DSR);
    expect(runProbeProgram(sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN }))).verdict).toBe(TC_ACT_SHOT);
    expect(f.dp.probeSentAt(keyOf(IP.vip4, 80, PROBE_PORT_MIN))).toBeNull();
  });
});

describe('ipip probes: the very bytes the balancer sends for the same packet with TTL 1', () => {
  /* The balancer drops a frame from the LB's own source and a probe port (a looped
   * probe): here the configured source is another address, so it balances the probe's
   * frame as a client's, and both write that address as the outer source. */
  beforeEach(() => {
    f.close();
    f = new BalancerFixture({ config: { sourceV4: parseAddress(IP.other4).bytes, sourceV6: parseAddress(IP.other6).bytes } });
  });

  /** A VIP whose one backend is `backend`, so the balancer's ring picks it for every flow. */
  function expectLikeBalancer(vip: string, backend: BackendSpec, probe: Buffer, outer: { version: 4 | 6; protocol: number }) {
    f.addVip({ id: 2, address: vip, port: 80, forwarding: 'ipip', backends: [backend] });
    setProbe(vip, 80, PROBE_PORT_MIN, backend.id, FORWARD_IPIP);
    const inner = hopLimited(probe).subarray(14);
    const fromClient = ethernet(MAC.lb, MAC.client, probe.readUInt16BE(12), inner);
    const balanced = f.run(fromClient);
    expect(balanced.verdict).toBe(XDP.TX);

    const key = keyOf(vip, 80, PROBE_PORT_MIN);
    const { verdict, data } = expectStampedBy(key, probe);
    expect(verdict).toBe(TC_ACT_OK);
    expect(data).toEqual(balanced.data);
    const eth = parseEthernet(data);
    expect([eth.dst, eth.src]).toEqual([backend.mac, MAC.lb]);
    const ip = parseIp(eth.payload);
    expect(ip).toMatchObject({ version: outer.version, protocol: outer.protocol, dst: backend.address, headerChecksumOk: true });
    expect(ip.payload).toEqual(inner);
    expect(parseIp(ip.payload)).toMatchObject({ ttl: 1, headerChecksumOk: true });
  }

  test('IPv4 in IPv4', () => {
    expectLikeBalancer(IP.vip4, backends4(2)[0]!, sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN, flags: 'S' })), {
      version: 4,
      protocol: PROTO.IPIP,
    });
  });

  test('IPv6 in IPv6', () => {
    expectLikeBalancer(IP.vip6, backends6(2)[1]!, sentByLb(tcp6({ src: IP.source6, sport: PROBE_PORT_MIN, flags: 'S' })), {
      version: 6,
      protocol: PROTO.IPV6,
    });
  });

  test('an IPv6 probe to an IPv4 backend cannot be encapsulated: dropped, unstamped', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends4(2) });
    setProbe(IP.vip6, 80, PROBE_PORT_MIN, backends4(2)[0]!.id, FORWARD_IPIP);
    expect(runProbeProgram(sentByLb(tcp6({ src: IP.source6, sport: PROBE_PORT_MIN, flags: 'S' }))).verdict).toBe(TC_ACT_SHOT);
    expect(f.dp.probeSentAt(keyOf(IP.vip6, 80, PROBE_PORT_MIN))).toBeNull();
  });

  test('IPv4 in IPv6', () => {
    expectLikeBalancer(IP.vip4, backends6(2)[2]!, sentByLb(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN, flags: 'S' })), {
      version: 6,
      protocol: PROTO.IPIP,
    });
  });
});
