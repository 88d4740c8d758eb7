/** IP and MAC addresses: parsing, canonical text and the byte forms the data plane stores. */
import ipaddr from 'ipaddr.js';

/** The IP version, as the data plane's FAMILY_V4 and FAMILY_V6 (dataplane/codec.ts) encode it. */
export type Family = 4 | 6;

/** The family of an address in canonical text. */
export const familyOf = (address: string): Family => (address.includes(':') ? 6 : 4);

export interface AddressBytes {
  family: Family;
  /** 16 bytes, network order; IPv4 in the first four. */
  bytes: Buffer;
}

/** Parses a plain IPv4 or IPv6 address (no prefix, no zone); throws naming the input. */
export function parseAddress(text: string): AddressBytes {
  if (!ipaddr.isValid(text) || text.includes('%')) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  const parsed = ipaddr.parse(text);
  if (parsed.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(text)) {
    throw new TypeError(`not a dotted-quad IPv4 address: ${JSON.stringify(text)}`);
  }
  const bytes = Buffer.alloc(16);
  Buffer.from(parsed.toByteArray()).copy(bytes);
  return { family: parsed.kind() === 'ipv4' ? 4 : 6, bytes };
}

export function formatAddress(family: number, bytes: Buffer): string {
  if (family === 4) return Array.from(bytes.subarray(0, 4)).join('.');
  return ipaddr.fromByteArray(Array.from(bytes.subarray(0, 16))).toString();
}

/** Any IPv4 or IPv6 address in its canonical text; throws naming the input. */
export function canonicalAddress(text: string): string {
  const { family, bytes } = parseAddress(text);
  return formatAddress(family, bytes);
}

/** A MAC address as six colon-separated hex pairs, e.g. 02:00:00:00:00:01. */
export const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function parseMac(text: string): Buffer {
  if (!MAC_PATTERN.test(text)) throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  return Buffer.from(text.split(':').map((b) => parseInt(b, 16)));
}

export function formatMac(bytes: Buffer): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
