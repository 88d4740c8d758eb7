/**
 * Packet fuzzing: 1,000,000 random and mutated frames (truncations, bad IHL and
 * lengths, options, fragments, extension headers, ICMP with bad quotes, flipped bytes)
 * through BPF_PROG_TEST_RUN. Nothing is forwarded unless it is a well-formed packet to
 * a VIP address, every forwarded frame is well formed, and the outcome counters add
 * up to the number of frames.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseAddress } from '../control/net/address.js';
import { BalancerFixture, IP, MAC } from './lib/fixture.js';
import {
  checksum,
  echoRest,
  ETH_P_IP,
  ETH_P_IPV6,
  ethernet,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  ipv6ExtensionHeader,
  ipv6FragmentHeader,
  PROTO,
  tcp,
  udp,
  XDP,
} from './lib/packet.js';

const FRAMES = 1_000_000;

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(next() * xs.length)];
    if (x === undefined) throw new RangeError('pick from an empty list');
    return x;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick };
}

const VIP_ADDRESSES = new Set([IP.vip4, IP.vip6].map((a) => parseAddress(a).bytes.toString('hex')));

/** Templates: valid VIP and non-VIP traffic of every kind the balancer parses. */
function templates(): Buffer[] {
  const v4 = (dst: string, protocol: number, payload: Buffer, extra = {}) =>
    ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src: IP.client4, dst, protocol, payload, ...extra }));
  const v6 = (dst: string, nextHeader: number, payload: Buffer) =>
    ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst, nextHeader, payload }));
  const t4 = (dst: string, dport = 80) => tcp({ src: IP.client4, dst, sport: 40000, dport, payload: Buffer.alloc(20, 7) });
  const quote4 = ipv4({
    src: IP.vip4,
    dst: IP.client4,
    protocol: PROTO.TCP,
    payload: tcp({ src: IP.vip4, dst: IP.client4, sport: 80, dport: 40000 }),
  }).subarray(0, 28);
  const quote6 = ipv6({
    src: IP.vip6,
    dst: IP.client6,
    nextHeader: PROTO.TCP,
    payload: tcp({ src: IP.vip6, dst: IP.client6, sport: 80, dport: 40000 }),
  }).subarray(0, 48);
  return [
    v4(IP.vip4, PROTO.TCP, t4(IP.vip4)),
    v4(IP.vip4, PROTO.TCP, t4(IP.vip4), { options: Buffer.from([1, 1, 1, 0, 0x44, 4, 5, 0]) }),
    v4(IP.vip4, PROTO.TCP, t4(IP.vip4), { df: true }),
    v4(IP.vip4, PROTO.UDP, udp({ src: IP.client4, dst: IP.vip4, sport: 5000, dport: 53, payload: Buffer.alloc(30, 1) })),
    v4(IP.vip4, PROTO.TCP, t4(IP.vip4, 81)),
    v4(IP.other4, PROTO.TCP, t4(IP.other4)),
    v4(IP.vip4, PROTO.ICMP, icmp(8, 0, echoRest(1, 1), Buffer.alloc(16))),
    v4(IP.vip4, PROTO.ICMP, icmp(3, 4, Buffer.from([0, 0, 5, 0]), quote4)),
    v4(IP.vip4, PROTO.UDP, Buffer.alloc(40), { mf: true }),
    v4(IP.vip4, PROTO.GRE, Buffer.alloc(24)),
    v6(IP.vip6, PROTO.TCP, tcp({ src: IP.client6, dst: IP.vip6, sport: 40000, dport: 80 })),
    v6(IP.vip6, PROTO.HOPOPTS, ipv6ExtensionHeader(PROTO.TCP, tcp({ src: IP.client6, dst: IP.vip6, sport: 40000, dport: 80 }))),
    v6(IP.vip6, PROTO.FRAGMENT, ipv6FragmentHeader(PROTO.UDP, Buffer.alloc(24), 0, true)),
    v6(IP.vip6, PROTO.ICMPV6, icmpv6({ src: IP.client6, dst: IP.vip6 }, 128, 0, echoRest(2, 2), Buffer.alloc(8))),
    v6(IP.vip6, PROTO.ICMPV6, icmpv6({ src: '2001:db8::fe', dst: IP.vip6 }, 2, 0, Buffer.from([0, 0, 5, 0]), quote6)),
    v6(IP.other6, PROTO.UDP, udp({ src: IP.client6, dst: IP.other6, sport: 1, dport: 2 })),
  ];
}

/** One fuzzed frame: a template with a few mutations. */
function mutate(r: ReturnType<typeof random>, frames: Buffer[]): Buffer {
  let f = Buffer.from(r.pick(frames));
  const rounds = 1 + r.int(3);
  for (let i = 0; i < rounds; i++) {
    switch (r.int(9)) {
      case 0: // truncate
        f = f.subarray(0, 14 + r.int(Math.max(1, f.length - 14)));
        break;
      case 1: // flip a random byte (not the EtherType: other types just pass)
        {
          const at = r.int(f.length);
          if (at !== 12 && at !== 13) f.writeUInt8(f.readUInt8(at) ^ (1 + r.int(255)), at);
        }
        break;
      case 2: // corrupt a byte of the IP header
        if (f.length > 14) f[14 + r.int(Math.min(40, f.length - 14))] = r.int(256);
        break;
      case 3: // IHL / version nibble
        if (f.length > 14) f[14] = (r.int(16) << 4) | r.int(16);
        break;
      case 4: // total / payload length
        if (f.length >= 20) f.writeUInt16BE(r.int(65536), f.readUInt16BE(12) === ETH_P_IP ? 16 : 18);
        break;
      case 5: // fragment bits
        if (f.length >= 22 && f.readUInt16BE(12) === ETH_P_IP) f.writeUInt16BE(r.int(65536), 20);
        break;
      case 6: // append junk
        f = Buffer.concat([f, Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256)))]);
        break;
      case 7: // L4 header bytes (ports, data offset, lengths, ICMP type)
        if (f.length > 40) f[34 + r.int(Math.min(30, f.length - 34))] = r.int(256);
        break;
      default: // leave as is
        break;
    }
  }
  return f.length < 14 ? Buffer.concat([f, Buffer.alloc(14 - f.length)]) : f;
}

/** The destination address of an IPv4/IPv6 frame, as hex of the 16-byte form, if it has one. */
function destination(frame: Buffer): string | null {
  const type = frame.readUInt16BE(12);
  if (type === ETH_P_IP && frame.length >= 34) return Buffer.concat([frame.subarray(30, 34), Buffer.alloc(12)]).toString('hex');
  if (type === ETH_P_IPV6 && frame.length >= 54) return frame.subarray(38, 54).toString('hex');
  return null;
}

let f: BalancerFixture;
beforeAll(() => {
  f = new BalancerFixture({ maxFlows: 1 << 16 });
  const backends = (vip: number, family: 4 | 6) =>
    [1, 2, 3].map((n) => ({ id: vip * 10 + n, address: family === 4 ? IP.backend4(n) : IP.backend6(n), mac: MAC.backend(n) }));
  f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends(1, 4) });
  f.addVip({ id: 2, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'ipip', backends: backends(2, 4) });
  f.addVip({ id: 3, address: IP.vip6, port: 80, forwarding: 'ipip', backends: backends(3, 6) });
  f.addVip({ id: 4, address: IP.vip4, port: 81, forwarding: 'ipip', backends: backends(4, 6) });
});
afterAll(() => f?.close());

describe('packet fuzzing', () => {
  test(`${FRAMES.toLocaleString('en')} fuzzed frames: only well-formed VIP packets are forwarded, forwarded frames are well formed, counters add up`, () => {
    const seed = 0x5eed;
    const r = random(seed);
    const frames = templates();
    const verdicts = { [XDP.PASS]: 0, [XDP.DROP]: 0, [XDP.TX]: 0 } as Record<number, number>;
    f.counterDelta();
    for (let i = 0; i < FRAMES; i++) {
      const input = mutate(r, frames);
      const { verdict, data } = f.run(input);
      if (!(verdict in verdicts)) throw new Error(`frame ${i} (seed ${seed}): verdict ${verdict} for ${input.toString('hex')}`);
      verdicts[verdict]!++;
      if (verdict === XDP.PASS && !data.equals(input)) throw new Error(`frame ${i}: passed frame was changed: ${input.toString('hex')}`);
      if (verdict !== XDP.TX) continue;
      // Forwarded: the input went to a VIP address with a sane IP header ...
      const dst = destination(input);
      if (!dst || !VIP_ADDRESSES.has(dst)) throw new Error(`frame ${i}: forwarded a frame to no VIP: ${input.toString('hex')}`);
      const type = input.readUInt16BE(12);
      if (type === ETH_P_IP) {
        const ihl = (input.readUInt8(14) & 0xf) * 4;
        const total = input.readUInt16BE(16);
        if (input.readUInt8(14) >> 4 !== 4 || ihl < 20 || total < ihl || 14 + total > input.length)
          throw new Error(`frame ${i}: forwarded a malformed IPv4 header: ${input.toString('hex')}`);
      } else if (input.readUInt8(14) >> 4 !== 6 || 54 + input.readUInt16BE(18) > input.length) {
        throw new Error(`frame ${i}: forwarded a malformed IPv6 header: ${input.toString('hex')}`);
      }
      if (type === ETH_P_IP && checksum(input.subarray(14, 14 + (input.readUInt8(14) & 0xf) * 4)) !== 0) {
        throw new Error(`frame ${i}: forwarded an IPv4 header with a wrong checksum: ${input.toString('hex')}`);
      }
      // ... and the output is well formed: a valid outer IPv4 checksum when there is one.
      if (data.readUInt16BE(12) === ETH_P_IP) {
        const ihl = (data.readUInt8(14) & 0xf) * 4;
        if (checksum(data.subarray(14, 14 + ihl)) !== 0) throw new Error(`frame ${i}: output IPv4 checksum wrong: ${data.toString('hex')}`);
      }
    }
    const counted = Object.values(f.counterDelta()).reduce((a, b) => a + (b ?? 0), 0);
    expect(counted).toBe(FRAMES);
    // The mix exercised every verdict.
    for (const verdict of [XDP.PASS, XDP.DROP, XDP.TX]) expect(verdicts[verdict]).toBeGreaterThan(FRAMES / 100);
  });
});
