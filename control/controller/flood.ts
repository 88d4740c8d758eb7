/**
 * The flood watch: every second, whether or not anyone reads stats, it reads the
 * configured VIPs' flow counters (flow-counters.ts), turns their new flows by CPU into
 * per-CPU rates over the window since the last reading, decides the flood state
 * (flood-state.ts) and publishes a flood event when a flood starts or ends.
 */
import type { DataplanePort } from '../dataplane/port.js';
import type { VipPlan } from '../reconciler/plan.js';
import { FlowCounters, type FlowTotals } from './flow-counters.js';
import { DEFAULT_FLOOD_THRESHOLD, type FloodEnd, type FloodState, type FloodView, NO_FLOOD, stepFlood } from './flood-state.js';
import type { NewEvent } from './views.js';

export const FLOOD_TICK_MS = 1000;

export interface FloodWatchOptions {
  dp: Pick<DataplanePort, 'flowCounts'>;
  /** The configured VIPs. */
  plans: () => Iterable<VipPlan>;
  /** New flows per second over all CPUs that count as a flood; DEFAULT_FLOOD_THRESHOLD when omitted. */
  floodThreshold?: number | undefined;
  publish: (event: NewEvent) => void;
  /** The clock (ms); Date.now when omitted. */
  now?: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class FloodWatch {
  private state: FloodState = NO_FLOOD;
  private last: { at: number; newFlows: number[] } | null = null;
  private rates: number[] = [];
  private readonly now: () => number;
  private readonly counters: FlowCounters;
  readonly threshold: number;

  constructor(private readonly options: FloodWatchOptions) {
    this.now = options.now ?? Date.now;
    this.threshold = options.floodThreshold ?? DEFAULT_FLOOD_THRESHOLD;
    this.counters = new FlowCounters(options.dp, options.plans);
  }

  /** The configured VIPs' new flows by CPU, evictions and unrecorded packets counted while the daemon runs, read now. */
  totals(): FlowTotals {
    return this.counters.read();
  }

  /** Ends a window: reads the counters, steps the flood state, publishes a start or end. */
  sample(): void {
    const at = this.now();
    const { newFlows } = this.totals();
    const last = this.last;
    this.last = { at, newFlows };
    if (!last || at <= last.at) return;
    const seconds = (at - last.at) / 1000;
    // The totals only grow; a CPU new since the last reading counts from 0.
    const added = newFlows.map((total, cpu) => Math.max(0, total - (last.newFlows[cpu] ?? 0)));
    this.rates = added.map((count) => Math.round(count / seconds));
    const window = { start: last.at, perCpu: this.rates, newFlows: added.reduce((a, b) => a + b, 0) };
    const { state, change } = stepFlood(this.state, window, this.threshold);
    this.state = state;
    if (!change) return;
    if ('started' in change) this.options.publish(this.event(true, { ...change.started, end: at }));
    else this.options.publish(this.event(false, change.ended));
  }

  view(): FloodView {
    const { flood } = this.state;
    return {
      active: flood !== null,
      since: flood ? iso(flood.start) : null,
      threshold: this.threshold,
      peakPerSecond: flood?.peak ?? null,
      newFlowsPerSecond: [...this.rates],
    };
  }

  private event(active: boolean, flood: FloodEnd): NewEvent {
    return {
      type: 'flood',
      active,
      threshold: this.threshold,
      newFlowsPerSecond: [...this.rates],
      peakPerSecond: flood.peak,
      since: iso(flood.start),
      durationSeconds: (flood.end - flood.start) / 1000,
      newFlows: flood.newFlows,
    };
  }
}
