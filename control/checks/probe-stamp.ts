/**
 * Whether a via-vip probe's answer can be its backend's. xlb_probe stamps each probe it
 * sends on (xlb_probe_sent_v1). One that missed it (routed out of another interface or
 * by a policy rule, let out by an egress filter ahead of xlb's) can still be answered:
 * a router hairpins it to another LB of the fleet, or a NAT changes its source, and
 * whichever backend that balancer picks answers. So a success counts only for a probe
 * stamped after it began.
 */
import { protocolNumber } from '../dataplane/codec.js';
import type { ProbeKey } from '../dataplane/probes.js';
import { parseAddress } from '../net/address.js';

/**
 * When xlb_probe last sent the probe of a key on, or null when it has not: in
 * process.hrtime.bigint() time, as bpf_ktime_get_ns() and libuv both read CLOCK_MONOTONIC.
 */
export type ProbeSentAt = (key: ProbeKey) => bigint | null;

/** The key of a via-vip probe's packets: to the VIP address and check port, from its local port. */
export function probeKey(
  spec: { address: string; port: number; localPort?: number | undefined },
  protocol: 'tcp' | 'udp',
): ProbeKey | null {
  if (spec.localPort === undefined) return null;
  const { family, bytes } = parseAddress(spec.address);
  return { family, address: bytes, port: spec.port, proto: protocolNumber(protocol), localPort: spec.localPort };
}

/** Whether a probe begun at `startedNs` passed xlb_probe: stamped since. */
export const passedProbeProgram = (startedNs: bigint, sentNs: bigint | null): boolean => sentNs !== null && sentNs >= startedNs;

/** The failure of a probe answered without passing xlb_probe on `iface`, with its route's problem when that is known. */
export function unstampedReason(iface: string, backend: string, route: string | null): string {
  const why = route === null ? '' : ` (${route})`;
  return `answered without passing xlb_probe on ${iface}${why}: the answer need not be from ${backend}`;
}
