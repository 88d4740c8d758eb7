/**
 * The configured VIPs' new flows, evictions and unrecorded packets as counters that
 * only grow while the daemon runs (Prometheus reads a fall as a reset). Each reading
 * adds every VIP's increase since the reading before, clamped at 0: a VIP removed
 * takes its counts with it and a VIP added brings only its own. The first reading (the
 * controller's, once the state is applied at start) is the baseline: the counters start
 * at 0 with the daemon. A VIP first seen later counts from 0, as the reconciler zeroes
 * a new VIP's stats.
 */
import type { FlowState } from '../dataplane/codec.js';
import type { VipFlowCounts } from '../dataplane/flow-counts.js';
import type { DataplanePort } from '../dataplane/port.js';
import type { VipPlan } from '../reconciler/plan.js';
import { vipKeyText } from '../state/schema.js';

export type FlowTotals = VipFlowCounts;

/** Readings by VIP: its id and key, so an id given to another VIP is another VIP. */
export type FlowReading = ReadonlyMap<string, VipFlowCounts>;

const ZERO: VipFlowCounts = { newFlows: [], evictions: { new: 0, established: 0, closing: 0 }, unrecorded: 0 };

const grown = (total: number, before: number, now: number) => total + Math.max(0, now - before);

/** `totals` with each VIP's increase from `before` to `now` added (a VIP new in `now` from 0). */
export function addIncrease(totals: FlowTotals, before: FlowReading, now: FlowReading): FlowTotals {
  const next = { newFlows: [...totals.newFlows], evictions: { ...totals.evictions }, unrecorded: totals.unrecorded };
  for (const [vip, counts] of now) {
    const last = before.get(vip) ?? ZERO;
    counts.newFlows.forEach((count, cpu) => (next.newFlows[cpu] = grown(next.newFlows[cpu] ?? 0, last.newFlows[cpu] ?? 0, count)));
    for (const state of Object.keys(counts.evictions) as FlowState[])
      next.evictions[state] = grown(next.evictions[state], last.evictions[state], counts.evictions[state]);
    next.unrecorded = grown(next.unrecorded, last.unrecorded, counts.unrecorded);
  }
  return next;
}

export class FlowCounters {
  private last: FlowReading | null = null;
  private totals: FlowTotals = ZERO;

  constructor(
    private readonly dp: Pick<DataplanePort, 'flowCounts'>,
    private readonly plans: () => Iterable<VipPlan>,
  ) {}

  /** Reads the VIPs' counters now and returns the totals with their increase added. */
  read(): FlowTotals {
    const vips = [...this.plans()].map(({ vip }) => vip);
    const counts = this.dp.flowCounts(vips.map((vip) => vip.id));
    const reading: FlowReading = new Map(vips.map((vip) => [`${vip.id} ${vipKeyText(vip)}`, counts.get(vip.id)!]));
    // The first reading is its own baseline: the totals start at 0, one per CPU.
    this.totals = addIncrease(this.totals, this.last ?? reading, reading);
    this.last = reading;
    return this.totals;
  }
}
