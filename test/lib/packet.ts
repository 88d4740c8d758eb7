/**
 * Packet tests' builders and parsers: the builders of control/net/packet.ts
 * (re-exported), IPv6 extension and fragment headers, and parsers for what the
 * balancer sent.
 */
import { formatAddress, parseAddress } from '../../control/net/address.js';
import { checksum, PROTO, pseudoHeaderSum } from '../../control/net/packet.js';

export * from '../../control/net/packet.js';

export const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

export function ipv6ExtensionHeader(nextHeader: number, payload: Buffer, hdrLen = 0): Buffer {
  const header = Buffer.alloc(8 * (hdrLen + 1));
  header[0] = nextHeader;
  header[1] = hdrLen;
  if (header[2] === 0 && hdrLen === 0) header[2] = 1; // a PadN-style option byte
  return Buffer.concat([header, payload]);
}

export function ipv6FragmentHeader(nextHeader: number, payload: Buffer, offset = 0, more = false, id = 1): Buffer {
  const header = Buffer.alloc(8);
  header[0] = nextHeader;
  header.writeUInt16BE((offset << 3) | (more ? 1 : 0), 2);
  header.writeUInt32BE(id, 4);
  return Buffer.concat([header, payload]);
}

export function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

// ---- parsing ---------------------------------------------------------------

export interface ParsedEthernet {
  dst: string;
  src: string;
  etherType: number;
  payload: Buffer;
}

const mac = (b: Buffer) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');

export function parseEthernet(frame: Buffer): ParsedEthernet {
  return {
    dst: mac(frame.subarray(0, 6)),
    src: mac(frame.subarray(6, 12)),
    etherType: frame.readUInt16BE(12),
    payload: frame.subarray(14),
  };
}

export interface ParsedIp {
  version: 4 | 6;
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  tos: number;
  headerLength: number;
  totalLength: number;
  df: boolean;
  flowLabel: number;
  /** IPv4 header checksum verifies (always true for IPv6). */
  headerChecksumOk: boolean;
  header: Buffer;
  payload: Buffer;
}

const ipText = (b: Buffer) => formatAddress(b.length === 4 ? 4 : 6, b);

/** Normalises an address literal for comparison with parsed ones. */
export function addr(text: string): string {
  const { family, bytes } = parseAddress(text);
  return formatAddress(family, bytes);
}

export function parseIp(packet: Buffer): ParsedIp {
  const version = packet.readUInt8(0) >> 4;
  if (version === 4) {
    const headerLength = (packet.readUInt8(0) & 0xf) * 4;
    const header = packet.subarray(0, headerLength);
    return {
      version: 4,
      src: ipText(packet.subarray(12, 16)),
      dst: ipText(packet.subarray(16, 20)),
      protocol: packet.readUInt8(9),
      ttl: packet.readUInt8(8),
      tos: packet.readUInt8(1),
      headerLength,
      totalLength: packet.readUInt16BE(2),
      df: (packet.readUInt16BE(6) & 0x4000) !== 0,
      flowLabel: 0,
      headerChecksumOk: checksum(header) === 0,
      header,
      payload: packet.subarray(headerLength, packet.readUInt16BE(2)),
    };
  }
  return {
    version: 6,
    src: ipText(packet.subarray(8, 24)),
    dst: ipText(packet.subarray(24, 40)),
    protocol: packet.readUInt8(6),
    ttl: packet.readUInt8(7),
    tos: (packet.readUInt32BE(0) >>> 20) & 0xff,
    headerLength: 40,
    totalLength: 40 + packet.readUInt16BE(4),
    df: false,
    flowLabel: packet.readUInt32BE(0) & 0xfffff,
    headerChecksumOk: true,
    header: packet.subarray(0, 40),
    payload: packet.subarray(40, 40 + packet.readUInt16BE(4)),
  };
}

/** Whether a TCP/UDP/ICMPv6 payload's checksum verifies under its IP header. */
export function l4ChecksumOk(ip: ParsedIp): boolean {
  if (ip.protocol === PROTO.ICMP) return checksum(ip.payload) === 0;
  return checksum(ip.payload, pseudoHeaderSum(ip.src, ip.dst, ip.protocol, ip.payload.length)) === 0;
}
