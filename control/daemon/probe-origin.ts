/** Where the daemon's via-vip probes leave from: the XDP interface and the balancer's configured sources. */
import type { ProbeOrigin } from '../controller/options.js';
import { formatAddress } from '../net/address.js';

/** A source as the balancer's config holds it (16 bytes, IPv4 in the first 4), as text; null when unset (all zero). */
export const sourceText = (family: 4 | 6, bytes: Buffer): string | null =>
  bytes.subarray(0, family === 4 ? 4 : 16).some((byte) => byte !== 0) ? formatAddress(family, bytes) : null;

/** The probes bind the very sources the balancer compares a looped probe's with (xlb_config.source_v4/v6); `held` says why a family's cannot. */
export function probeOrigin(iface: string, sourceV4: Buffer, sourceV6: Buffer, held: ProbeOrigin['held']): ProbeOrigin {
  return { iface, v4: sourceText(4, sourceV4), v6: sourceText(6, sourceV6), held };
}
