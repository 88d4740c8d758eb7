/** A VIP's new-flow and connection-table churn counters, from its per-CPU xlb_vip_stats value. */
import { type FlowState, vipStatsCodec } from './codec.js';
import { fieldByCpu } from './per-cpu.js';

export interface VipFlowCounts {
  /** New flows (connection-table misses) so far, by online CPU. */
  newFlows: number[];
  /** New flows recorded over another flow's entry, by that entry's state. */
  evictions: Record<FlowState, number>;
  /** Packets of new flows that found no entry and no way to take (every packet of such a flow counts). */
  unrecorded: number;
}

/** The counts of one VIP's per-CPU value (a slot per possible CPU), new flows on the first `cpus` CPUs. */
export function vipFlowCounts(value: Buffer, cpus: number): VipFlowCounts {
  const possible = value.length / (Math.ceil(vipStatsCodec.size / 8) * 8);
  const total = (field: keyof typeof vipStatsCodec.fields & string) =>
    fieldByCpu(vipStatsCodec, value, field, possible).reduce((a, b) => a + b, 0);
  return {
    newFlows: fieldByCpu(vipStatsCodec, value, 'flow_misses', cpus),
    evictions: { new: total('flow_evicted_new'), established: total('flow_evicted_established'), closing: total('flow_evicted_closing') },
    unrecorded: total('flow_unrecorded'),
  };
}
