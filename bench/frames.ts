/** Frames for the benchmarks, from the test packet builder, padded to a multiple of 8 bytes (the harness copies words). */
import { ETH_P_IP, ETH_P_IPV6, ethernet, ipv4, ipv6, PROTO, tcp, udp } from '../test/lib/packet.js';

export interface FrameSpec {
  family: 4 | 6;
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  dport: number;
  sport?: number;
  /** TCP flags as test/lib/packet.ts's tcp() reads them (default 'A': a segment of an established flow). */
  flags?: string;
}

export const CLIENT_MAC = '02:00:00:00:00:01';

export function frame(spec: FrameSpec, dstMac: string, srcMac = CLIENT_MAC): Buffer {
  const l4 =
    spec.proto === 'tcp'
      ? tcp({
          src: spec.src,
          dst: spec.dst,
          sport: spec.sport ?? 40000,
          dport: spec.dport,
          flags: spec.flags ?? 'A',
          payload: Buffer.alloc(6),
        })
      : udp({ src: spec.src, dst: spec.dst, sport: spec.sport ?? 40000, dport: spec.dport, payload: Buffer.alloc(18) });
  const protocol = spec.proto === 'tcp' ? PROTO.TCP : PROTO.UDP;
  const ip =
    spec.family === 4
      ? ipv4({ src: spec.src, dst: spec.dst, protocol, payload: l4 })
      : ipv6({ src: spec.src, dst: spec.dst, nextHeader: protocol, payload: l4 });
  const f = ethernet(dstMac, srcMac, spec.family === 4 ? ETH_P_IP : ETH_P_IPV6, ip);
  const padded = Math.max(64, Math.ceil(f.length / 8) * 8);
  return Buffer.concat([f, Buffer.alloc(padded - f.length)]);
}
