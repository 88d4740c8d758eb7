/**
 * Packet builders: Ethernet, IPv4 (options, fragments), IPv6, TCP, UDP, ICMP and
 * ICMPv6 with correct checksums unless a caller overrides a field to make the packet
 * malformed. `xlb trace` builds its frames with them, and so do the tests.
 */
import { parseAddress, parseMac } from './address.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;

export const PROTO = {
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  ICMPV6: 58,
  HOPOPTS: 0,
  DSTOPTS: 60,
  GRE: 47,
} as const;

/** RFC 1071 sum of a buffer (odd length padded), not folded or inverted. */
function sum16(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf.readUInt8(buf.length - 1) << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function checksum(buf: Buffer, initial = 0): number {
  return fold(sum16(buf, initial));
}

function addressBytes(text: string): Buffer {
  const { family, bytes } = parseAddress(text);
  return family === 4 ? bytes.subarray(0, 4) : bytes;
}

/** The sum of the TCP/UDP/ICMPv6 pseudo-header. */
export function pseudoHeaderSum(src: string, dst: string, protocol: number, length: number): number {
  const s = addressBytes(src);
  const d = addressBytes(dst);
  return sum16(Buffer.concat([s, d])) + protocol + length;
}

export function ethernet(dst: string, src: string, etherType: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  parseMac(dst).copy(header, 0);
  parseMac(src).copy(header, 6);
  header.writeUInt16BE(etherType, 12);
  return Buffer.concat([header, payload]);
}

export interface Ipv4Options {
  src: string;
  dst: string;
  protocol: number;
  payload: Buffer;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  fragmentOffset?: number;
  /** Raw option bytes, padded to a multiple of 4. */
  options?: Buffer;
  /** Overrides, for malformed packets. */
  version?: number;
  ihl?: number;
  totalLength?: number;
  checksum?: number;
}

export function ipv4(o: Ipv4Options): Buffer {
  const options = o.options ?? Buffer.alloc(0);
  if (options.length % 4) throw new Error('IPv4 options must be padded to 4 bytes');
  const header = Buffer.alloc(20 + options.length);
  const ihl = o.ihl ?? header.length / 4;
  header[0] = ((o.version ?? 4) << 4) | ihl;
  header[1] = o.tos ?? 0;
  header.writeUInt16BE(o.totalLength ?? header.length + o.payload.length, 2);
  header.writeUInt16BE(o.id ?? 0, 4);
  header.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragmentOffset ?? 0) & 0x1fff), 6);
  header[8] = o.ttl ?? 64;
  header[9] = o.protocol;
  addressBytes(o.src).copy(header, 12);
  addressBytes(o.dst).copy(header, 16);
  options.copy(header, 20);
  header.writeUInt16BE(o.checksum ?? checksum(header), 10);
  return Buffer.concat([header, o.payload]);
}

export interface Ipv6Options {
  src: string;
  dst: string;
  nextHeader: number;
  payload: Buffer;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  payloadLength?: number;
  version?: number;
}

export function ipv6(o: Ipv6Options): Buffer {
  const header = Buffer.alloc(40);
  header.writeUInt32BE((((o.version ?? 6) << 28) | ((o.trafficClass ?? 0) << 20) | (o.flowLabel ?? 0)) >>> 0, 0);
  header.writeUInt16BE(o.payloadLength ?? o.payload.length, 4);
  header[6] = o.nextHeader;
  header[7] = o.hopLimit ?? 64;
  addressBytes(o.src).copy(header, 8);
  addressBytes(o.dst).copy(header, 24);
  return Buffer.concat([header, o.payload]);
}

/** An IPv6 extension header (hop-by-hop, routing, destination options) of 8*(hdrLen+1) bytes. */
export interface L4Addresses {
  src: string;
  dst: string;
}

export interface TcpOptions extends L4Addresses {
  sport: number;
  dport: number;
  flags?: string | undefined;
  seq?: number;
  ack?: number;
  payload?: Buffer | undefined;
  dataOffset?: number;
}

const TCP_FLAGS: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, A: 16, U: 32 };

export function tcp(o: TcpOptions): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(o.sport, 0);
  header.writeUInt16BE(o.dport, 2);
  header.writeUInt32BE(o.seq ?? 1000, 4);
  header.writeUInt32BE(o.ack ?? 0, 8);
  header[12] = (o.dataOffset ?? 5) << 4;
  header[13] = [...(o.flags ?? 'S')].reduce((f, c) => {
    const flag = TCP_FLAGS[c];
    if (flag === undefined) throw new RangeError(`TCP flag ${c}: expected one of ${Object.keys(TCP_FLAGS).join('')}`);
    return f | flag;
  }, 0);
  header.writeUInt16BE(65535, 14);
  const segment = Buffer.concat([header, payload]);
  segment.writeUInt16BE(checksum(segment, pseudoHeaderSum(o.src, o.dst, PROTO.TCP, segment.length)), 16);
  return segment;
}

export interface UdpOptions extends L4Addresses {
  sport: number;
  dport: number;
  payload?: Buffer;
  length?: number;
}

export function udp(o: UdpOptions): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const datagram = Buffer.concat([Buffer.alloc(8), payload]);
  datagram.writeUInt16BE(o.sport, 0);
  datagram.writeUInt16BE(o.dport, 2);
  datagram.writeUInt16BE(o.length ?? datagram.length, 4);
  datagram.writeUInt16BE(checksum(datagram, pseudoHeaderSum(o.src, o.dst, PROTO.UDP, datagram.length)) || 0xffff, 6);
  return datagram;
}

/** ICMP: type, code, checksum, 4 bytes `rest`, then `payload`. */
export function icmp(type: number, code: number, rest: Buffer, payload: Buffer): Buffer {
  const message = Buffer.concat([Buffer.from([type, code, 0, 0]), rest, payload]);
  message.writeUInt16BE(checksum(message), 2);
  return message;
}

export function icmpv6(addresses: L4Addresses, type: number, code: number, rest: Buffer, payload: Buffer): Buffer {
  const message = Buffer.concat([Buffer.from([type, code, 0, 0]), rest, payload]);
  message.writeUInt16BE(checksum(message, pseudoHeaderSum(addresses.src, addresses.dst, PROTO.ICMPV6, message.length)), 2);
  return message;
}

export function echoRest(id: number, sequence: number): Buffer {
  const rest = Buffer.alloc(4);
  rest.writeUInt16BE(id, 0);
  rest.writeUInt16BE(sequence, 2);
  return rest;
}
