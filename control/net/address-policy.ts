/**
 * Which addresses can be a VIP, a backend, a tunnel source or a BGP peer: unicast only. The documentation and
 * benchmark ranges (198.18.0.0/15, 2001:db8::/32) stay allowed: labs and tests use them.
 */
import ipaddr from 'ipaddr.js';

const classes: [kind: 'ipv4' | 'ipv6', cidr: string, what: string][] = [
  ['ipv4', '0.0.0.0/8', 'an unspecified ("this network") address'],
  ['ipv4', '127.0.0.0/8', 'a loopback address'],
  ['ipv4', '169.254.0.0/16', 'a link-local address'],
  ['ipv4', '224.0.0.0/4', 'a multicast address'],
  ['ipv4', '255.255.255.255/32', 'the limited broadcast address'],
  ['ipv4', '240.0.0.0/4', 'a reserved address'],
  ['ipv6', '::/128', 'the unspecified address'],
  ['ipv6', '::1/128', 'the loopback address'],
  ['ipv6', 'fe80::/10', 'a link-local address'],
  ['ipv6', 'ff00::/8', 'a multicast address'],
];
const ranges = classes.map(([kind, cidr, what]) => ({ kind, range: ipaddr.parseCIDR(cidr), cidr, what }));

/** Why `text` (a valid IPv4 or IPv6 address) is not a unicast address, or null when it is. */
export function addressRefusal(text: string): string | null {
  const parsed = ipaddr.parse(text);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return `${text} is an IPv4-mapped IPv6 address: use the IPv4 form ${(parsed as ipaddr.IPv6).toIPv4Address().toString()}`;
  }
  const hit = ranges.find(({ kind, range }) => kind === parsed.kind() && parsed.match(range));
  return hit ? `${text} is ${hit.what} (${hit.cidr}), not a unicast address` : null;
}
