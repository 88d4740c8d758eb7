/**
 * Frames and backends for balancer packet tests: client traffic to the fixture's VIPs,
 * the flows they carry, and the frame a dsr rewrite produces.
 */
import { parseAddress } from '../../control/net/address.js';
import { IPPROTO_TCP } from '../../control/dataplane/codec.js';
import { type BackendSpec, type Flow, IP, MAC } from './fixture.js';
import { ETH_P_IP, ETH_P_IPV6, ethernet, ipv4, type Ipv4Options, ipv6, ipv6ExtensionHeader, PROTO, tcp, udp } from './packet.js';

/* Backend records are per (VIP, backend): VIP v's backend n gets id 10v + n. */
export const backends4 = (vipId: number, macs = true): BackendSpec[] =>
  [1, 2, 3].map((n) => ({ id: vipId * 10 + n, address: IP.backend4(n), mac: macs ? MAC.backend(n) : undefined }));
export const backends6 = (vipId: number, macs = true): BackendSpec[] =>
  [1, 2, 3].map((n) => ({ id: vipId * 10 + n, address: IP.backend6(n), mac: macs ? MAC.backend(n) : undefined }));
export const backendMac = (id: number) => MAC.backend(id % 10);
export const backendNumber = (id: number) => id % 10;

export interface FrameOptions {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  payload?: Buffer;
  ip?: Partial<Ipv4Options>;
  flags?: string;
}

export function tcp4(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client4;
  const dst = o.dst ?? IP.vip4;
  const segment = tcp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 80, payload: o.payload, flags: o.flags });
  return ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src, dst, protocol: PROTO.TCP, payload: segment, ...o.ip }));
}

export function udp4(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client4;
  const dst = o.dst ?? IP.vip4;
  const datagram = udp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 53, payload: o.payload ?? Buffer.from('query') });
  return ethernet(MAC.lb, MAC.client, ETH_P_IP, ipv4({ src, dst, protocol: PROTO.UDP, payload: datagram, ...o.ip }));
}

export function tcp6(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client6;
  const dst = o.dst ?? IP.vip6;
  const segment = tcp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 80, payload: o.payload, flags: o.flags });
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src, dst, nextHeader: PROTO.TCP, payload: segment }));
}

export function udp6(o: FrameOptions = {}): Buffer {
  const src = o.src ?? IP.client6;
  const dst = o.dst ?? IP.vip6;
  const datagram = udp({ src, dst, sport: o.sport ?? 40000, dport: o.dport ?? 53, payload: o.payload ?? Buffer.from('query') });
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src, dst, nextHeader: PROTO.UDP, payload: datagram }));
}

/** TCP to port 80 behind `count` destination-options headers (the walk takes 4). */
export function tcp6BehindExtensionHeaders(count: number, dst = IP.vip6): Buffer {
  let payload = tcp({ src: IP.client6, dst, sport: 40000, dport: 80 });
  for (let i = 0; i < count; i++) payload = ipv6ExtensionHeader(i === 0 ? PROTO.TCP : PROTO.DSTOPTS, payload);
  return ethernet(MAC.lb, MAC.client, ETH_P_IPV6, ipv6({ src: IP.client6, dst, nextHeader: PROTO.DSTOPTS, payload }));
}

export const flow4 = (sport = 40000, dport = 80, proto = IPPROTO_TCP): Flow => ({ src: IP.client4, dst: IP.vip4, sport, dport, proto });
export const flow6 = (sport = 40000, dport = 80, proto = IPPROTO_TCP): Flow => ({ src: IP.client6, dst: IP.vip6, sport, dport, proto });

/** The VIP map key of a TCP VIP on the fixture's IPv4 VIP address. */
export const vipKey4 = (port: number) => ({ family: 4 as const, address: parseAddress(IP.vip4).bytes, port, proto: IPPROTO_TCP });

/** The frame as DSR leaves it: backend MAC, our MAC, nothing else changed. */
export function dsrRewrite(frame: Buffer, backendMacText: string): Buffer {
  return ethernet(backendMacText, MAC.lb, frame.readUInt16BE(12), frame.subarray(14));
}
