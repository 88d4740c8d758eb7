/**
 * A dry run's result as the operator reads it: the VIP, table and ring decisions with
 * the backends they name (address, weight, state, health and ring membership from
 * the controller's view), and the frame the balancer would send.
 */
import type { DryRunResult } from '../dataplane/dry-run.js';
import type { VipView } from '../controller/views.js';
import { formatAddress, formatMac } from '../net/address.js';
import type { StoredVip } from '../state/schema.js';
import type { TraceBackend, TraceView } from './schema.js';

/** The VIP a result names by id, with its view (null when the VIP is gone). */
export interface TracedVip {
  stored: StoredVip;
  view: VipView | null;
}

function backendOf(vip: TracedVip | undefined, id: number): TraceBackend {
  const address = vip?.stored.backends.find((b) => b.id === id)?.address ?? null;
  const view = vip?.view?.backends.find((b) => b.address === address);
  return {
    id,
    address,
    weight: view?.weight ?? null,
    state: view?.state ?? null,
    health: view?.health ?? null,
    healthReason: view?.healthReason ?? null,
    inRing: view?.inRing ?? null,
    slots: view?.slots ?? null,
  };
}

/** The sent frame's Ethernet addresses and, for ipip, the pushed IP header. */
function output(result: DryRunResult): TraceView['output'] {
  if (result.verdict !== 'tx') return null;
  const frame = result.output;
  const ip = frame.subarray(14);
  const outer =
    result.outcome !== 'tx_ipip'
      ? null
      : ip[0]! >> 4 === 4
        ? { source: formatAddress(4, ip.subarray(12, 16)), destination: formatAddress(4, ip.subarray(16, 20)), protocol: ip[9]! }
        : { source: formatAddress(6, ip.subarray(8, 24)), destination: formatAddress(6, ip.subarray(24, 40)), protocol: ip[6]! };
  return {
    frame: frame.toString('hex'),
    ethernet: { destination: formatMac(frame.subarray(0, 6)), source: formatMac(frame.subarray(6, 12)) },
    outer,
  };
}

/** `vip`: the VIP with the id the dry run matched, if the desired state has it. */
export function traceView(result: DryRunResult, vip: TracedVip | undefined): TraceView {
  const table = result.table && {
    result: result.table.hit ? ('hit' as const) : result.table.found ? ('stale' as const) : ('miss' as const),
    backend: result.table.found ? backendOf(vip, result.table.backendId) : null,
    ...(result.table.state ? { state: result.table.state } : {}),
  };
  // A ring slot names a backend only if the packet went on past the ring.
  const ring = result.ring && {
    hash: result.ring.hash,
    slot: result.ring.slot,
    backend: result.outcome === 'drop_no_backend' ? null : backendOf(vip, result.ring.backendId),
  };
  const stored = vip?.stored;
  return {
    verdict: result.verdict,
    outcome: result.outcome,
    vip: stored
      ? {
          protocol: stored.protocol,
          address: stored.address,
          port: stored.port,
          forwarding: stored.forwarding,
          conntrack: stored.conntrack,
        }
      : null,
    table,
    ring,
    backend: table?.result === 'hit' ? table.backend : (ring?.backend ?? null),
    output: output(result),
  };
}
