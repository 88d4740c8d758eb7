/** A VIP's new-flow and connection-table churn counters, from its per-CPU xlb_vip_stats value. */
import { type FlowState, vipStatsCodec } from './codec.js';
import { perCpuSlot } from './struct.js';

export interface VipFlowCounts {
  /**
   * New flows recorded so far, by online CPU: connection-table misses less the packets
   * no way took (a flow left to the ring misses with every packet, so counting its
   * packets would make busy traffic on a full table look like a flood).
   */
  newFlows: number[];
  /** New flows recorded over another flow's entry, by that entry's state. */
  evictions: Record<FlowState, number>;
  /** Packets of new flows that found no entry and no way to take (every packet of such a flow counts). */
  unrecorded: number;
}

const SLOT = perCpuSlot(vipStatsCodec.size);
const { offsets } = vipStatsCodec;
const u64 = (value: Buffer, at: number) => value.readUInt32LE(at) + value.readUInt32LE(at + 4) * 2 ** 32;

/**
 * The counts of one VIP's per-CPU value (a slot per possible CPU), new flows on the
 * first `cpus` CPUs, in one pass without allocating per field (65,536 VIPs a second).
 */
export function vipFlowCounts(value: Buffer, cpus: number): VipFlowCounts {
  const counts = { newFlows: new Array<number>(cpus).fill(0), evictions: { new: 0, established: 0, closing: 0 }, unrecorded: 0 };
  for (let at = 0, cpu = 0; at + SLOT <= value.length; at += SLOT, cpu++) {
    if (cpu < cpus) counts.newFlows[cpu] = u64(value, at + offsets.flow_misses) - u64(value, at + offsets.flow_unrecorded);
    counts.evictions.new += u64(value, at + offsets.flow_evicted_new);
    counts.evictions.established += u64(value, at + offsets.flow_evicted_established);
    counts.evictions.closing += u64(value, at + offsets.flow_evicted_closing);
    counts.unrecorded += u64(value, at + offsets.flow_unrecorded);
  }
  return counts;
}
