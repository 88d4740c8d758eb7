/**
 * The frame a flow's first packet makes, as the interface receives it: Ethernet to
 * the interface's MAC, IPv4 or IPv6 with valid checksums, then a TCP SYN, a UDP
 * datagram or an ICMP echo request. The balancer reads no TCP flags, so a SYN stands
 * for every segment of its flow: whether the flow exists is the connection table's
 * answer, not the packet's.
 */
import { familyOf, formatMac } from '../net/address.js';
import { echoRest, ETH_P_IP, ETH_P_IPV6, ethernet, icmp, icmpv6, ipv4, ipv6, PROTO, tcp, udp } from '../net/packet.js';
import type { Flow } from './schema.js';

/** The source MAC of a traced frame: a locally administered one, no real host's. */
const CLIENT_MAC = '02:00:00:00:00:01';
const ICMP_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;

export function flowFrame(flow: Flow, interfaceMac: Buffer): Buffer {
  const src = flow.source.address;
  const dst = flow.destination.address;
  const ports = { src, dst, sport: flow.source.port ?? 0, dport: flow.destination.port ?? 0 };
  const v6 = familyOf(src) === 6;
  const [protocol, payload] =
    flow.protocol === 'tcp'
      ? [PROTO.TCP, tcp({ ...ports, flags: 'S' })]
      : flow.protocol === 'udp'
        ? [PROTO.UDP, udp(ports)]
        : v6
          ? [PROTO.ICMPV6, icmpv6({ src, dst }, ICMPV6_ECHO_REQUEST, 0, echoRest(1, 1), Buffer.alloc(0))]
          : [PROTO.ICMP, icmp(ICMP_ECHO_REQUEST, 0, echoRest(1, 1), Buffer.alloc(0))];
  const packet = v6 ? ipv6({ src, dst, nextHeader: protocol, payload }) : ipv4({ src, dst, protocol, payload });
  return ethernet(formatMac(interfaceMac), CLIENT_MAC, v6 ? ETH_P_IPV6 : ETH_P_IP, packet);
}
