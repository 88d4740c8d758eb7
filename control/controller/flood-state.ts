/**
 * Whether the balancer is flooded with new flows, decided window by window (one a
 * second) from the new-flow rate over all CPUs, with hysteresis: a flood starts when
 * the rate is at or over the threshold for FLOOD_ENTER_WINDOWS windows in a row, and
 * ends when it is under half of it for FLOOD_LEAVE_WINDOWS windows in a row. A flood
 * spread over the CPUs counts as much as one on a single CPU; the per-CPU rates are
 * kept for diagnosis. Pure: the caller brings the windows and their times.
 */
import { z } from 'zod';

/** New flows per second over all CPUs that count as a flood (Katran's MAX_CONN_RATE, there a per-CPU limit). */
export const DEFAULT_FLOOD_THRESHOLD = 125_000;
export const FLOOD_ENTER_WINDOWS = 2;
export const FLOOD_LEAVE_WINDOWS = 10;

/** One window of the new-flow counters: when it began (ms), each CPU's rate (new flows/s) and the new flows in it. */
export interface FloodWindow {
  start: number;
  perCpu: readonly number[];
  newFlows: number;
}

/** A run of windows: when it began (ms), the new flows in it and its highest rate over all CPUs. */
interface Run {
  windows: number;
  start: number;
  newFlows: number;
  peak: number;
}

export interface FloodState {
  /** The flood under way (from its first window over the threshold), or null. */
  flood: Run | null;
  /** Windows over the threshold in a row while there is no flood; calm ones (under half of it) while there is. */
  run: Run | null;
}

export const NO_FLOOD: FloodState = { flood: null, run: null };

/** A flood that ended: when it began and ended (ms, the end being where the calm began), its new flows and highest rate over all CPUs. */
export interface FloodEnd {
  start: number;
  end: number;
  newFlows: number;
  peak: number;
}

export type FloodChange = { started: Run } | { ended: FloodEnd } | null;

const extend = (run: Run | null, window: FloodWindow, peak: number): Run => ({
  windows: (run?.windows ?? 0) + 1,
  start: run?.start ?? window.start,
  newFlows: (run?.newFlows ?? 0) + window.newFlows,
  peak: Math.max(run?.peak ?? 0, peak),
});

/** The state after `window`, and whether a flood started or ended with it. */
export function stepFlood(state: FloodState, window: FloodWindow, threshold: number): { state: FloodState; change: FloodChange } {
  const rate = window.perCpu.reduce((a, b) => a + b, 0);
  if (!state.flood) {
    if (rate < threshold) return { state: NO_FLOOD, change: null };
    const run = extend(state.run, window, rate);
    if (run.windows < FLOOD_ENTER_WINDOWS) return { state: { flood: null, run }, change: null };
    return { state: { flood: run, run: null }, change: { started: run } };
  }
  if (rate >= threshold / 2) {
    // The calm broke off: its windows belong to the flood.
    const flood = state.run ? { ...state.flood, newFlows: state.flood.newFlows + state.run.newFlows } : state.flood;
    return { state: { flood: extend(flood, window, rate), run: null }, change: null };
  }
  const calm = extend(state.run, window, rate);
  if (calm.windows < FLOOD_LEAVE_WINDOWS) return { state: { flood: state.flood, run: calm }, change: null };
  const { start, newFlows, peak: floodPeak } = state.flood;
  return { state: NO_FLOOD, change: { ended: { start, end: calm.start, newFlows, peak: floodPeak } } };
}

/** The flood as /v1/stats shows it. */
export const floodViewSchema = z
  .object({
    active: z.boolean(),
    since: z.string().nullable().describe('When the flood began (ISO 8601): its first window over the threshold; null: none'),
    threshold: z.number().describe('New flows per second over all CPUs that count as a flood (--flood-threshold)'),
    peakPerSecond: z.number().nullable().describe("The flood's highest new-flow rate over all CPUs so far; null: no flood"),
    newFlowsPerSecond: z.array(z.number()).describe('New flows per second on each online CPU over the last window of one second'),
  })
  .describe(
    `New flows of the configured VIPs: a flood starts when all CPUs together are at or over the threshold for ${FLOOD_ENTER_WINDOWS} s ` +
      `and ends when they are under half of it for ${FLOOD_LEAVE_WINDOWS} s`,
  );
export type FloodView = z.infer<typeof floodViewSchema>;
