/** The connection table's size and use: the real data plane and the in-memory model size it alike. */
import { FLOW_STATES, FLOW_WAYS, flowEntryCodec, type FlowState, flowState } from './codec.js';
import type { FlowTableUse } from './port.js';

/** Buckets of the connection table for a number of flows: a power of two. */
export const flowTableBuckets = (maxFlows: number) => 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(maxFlows / FLOW_WAYS))));

/**
 * The flows in `table` (a run of the connection table's buckets), in all, by state and
 * by backend id, each multiplied by `scale` (the table's buckets per bucket read).
 */
export function countFlows(table: Buffer, o: { slots: number; scale: number; maxBackends: number }): FlowTableUse {
  const byBackend = new Uint32Array(o.maxBackends);
  const byState = new Map<FlowState, number>(FLOW_STATES.map((name) => [name, 0]));
  let flows = 0;
  const { tag, check, backend_id: backendId, mark } = flowEntryCodec.offsets;
  // An entry in use has its tag or check set (flow_find() in the balancer).
  for (let entry = 0; entry < table.length; entry += flowEntryCodec.size) {
    if (!table.readUInt32LE(entry + tag) && !table.readUInt32LE(entry + check)) continue;
    flows++;
    const named = flowState(table[entry + mark]!); // the mark's low byte
    byState.set(named, byState.get(named)! + 1);
    const id = table.readUInt32LE(entry + backendId);
    if (id < byBackend.length) byBackend[id]!++;
  }
  const scaled = (count: number) => Math.round(count * o.scale);
  const states = Object.fromEntries(FLOW_STATES.map((name) => [name, scaled(byState.get(name)!)])) as Record<FlowState, number>;
  return { slots: o.slots, flows: scaled(flows), states, backendFlows: (id) => scaled(byBackend[id] ?? 0) };
}
