/**
 * Flood detection: the hysteresis of flood-state.ts window by window on the rate over
 * all CPUs, and the flood watch (flood.ts) on the in-memory data plane with an injected
 * clock: rates per CPU from the counters, the events at a flood's start and end, and
 * the view.
 */
import { expect, test } from 'vitest';
import { FloodWatch } from '../../control/controller/flood.js';
import { type FloodChange, type FloodState, NO_FLOOD, stepFlood } from '../../control/controller/flood-state.js';
import type { NewEvent } from '../../control/controller/views.js';
import type { VipPlan } from '../../control/reconciler/plan.js';
import { eventText } from '../../control/controller/event-text.js';
import { DataplaneModel } from '../lib/dataplane-model.js';

const THRESHOLD = 1000;

/** Feeds one-second windows of these per-CPU rates from second `first` on; the state, and the changes by second. */
function run(rates: number[][], from: FloodState = NO_FLOOD, first = 0): { state: FloodState; changes: [number, FloodChange][] } {
  let state = from;
  const changes: [number, FloodChange][] = [];
  rates.forEach((perCpu, index) => {
    const second = first + index;
    const window = { start: second * 1000, perCpu, newFlows: perCpu.reduce((a, b) => a + b, 0) };
    const step = stepFlood(state, window, THRESHOLD);
    state = step.state;
    if (step.change) changes.push([second, step.change]);
  });
  return { state, changes };
}

const over = [THRESHOLD, 0];
const dip = [THRESHOLD / 2, 0];
const calm = [THRESHOLD / 2 - 1, 0];
const times = (n: number, rates: number[]) => Array.from({ length: n }, () => rates);

test('a flood starts after two windows in a row at the threshold, not after one', () => {
  expect(run([over, calm, over, calm]).changes).toEqual([]);
  expect(run([over]).state.flood).toBeNull();
  const { state, changes } = run([calm, [0, 5000], over]);
  expect(changes).toEqual([[2, { started: { windows: 2, start: 1000, newFlows: 6000, peak: 5000 } }]]);
  expect(state.flood).not.toBeNull();
});

test('the threshold is for all CPUs together: a flood spread over them counts, its peak the highest total', () => {
  const spread = run(times(2, [THRESHOLD - 1, THRESHOLD - 1, THRESHOLD - 1])).changes;
  expect(spread).toEqual([[1, { started: { windows: 2, start: 0, newFlows: 6 * (THRESHOLD - 1), peak: 3 * (THRESHOLD - 1) } }]]);
  expect(run([over, [0, THRESHOLD]]).changes).toHaveLength(1);
  expect(run(times(5, [THRESHOLD / 2, THRESHOLD / 2 - 1])).changes).toEqual([]);
  // A flood ends when the total, not each CPU, stays under half the threshold.
  const flooded = run(times(2, over)).state;
  expect(run(times(12, [THRESHOLD / 4, THRESHOLD / 4, THRESHOLD / 4]), flooded, 2).changes).toEqual([]);
});

test('a flood lasts through a dip and ends after ten windows in a row with every CPU under half the threshold', () => {
  const flooded = run(times(3, over)).state;
  // Seconds 3-11 calm, 12 at half the threshold (the calm begins again), 13-21 calm.
  const dipped = run([...times(9, calm), dip, ...times(9, calm)], flooded, 3);
  expect(dipped.changes).toEqual([]);
  expect(dipped.state.flood).not.toBeNull();
  const ended = run([calm], dipped.state, 22);
  // From the first window over to where the last calm began; the broken-off calm's flows count.
  expect(ended.changes).toEqual([[22, { ended: { start: 0, end: 13_000, newFlows: 3000 + 9 * 499 + 500, peak: 1000 } }]]);
  expect(ended.state).toEqual(NO_FLOOD);
});

test('the end counts the flood up to the calm that ended it, with its new flows and peak', () => {
  const { changes } = run([over, [0, 4000], over, ...times(10, calm)]);
  expect(changes.map(([second]) => second)).toEqual([1, 12]);
  expect(changes[1]![1]).toEqual({ ended: { start: 0, end: 3000, newFlows: 6000, peak: 4000 } });
});

/** The plan of a VIP on id `id` (the watch reads only its id and key). */
const plan = (id: number, port = 80) => ({ vip: { id, protocol: 'tcp', address: '198.19.0.1', port } }) as VipPlan;

/** A watch over VIP 1 of a model with 2 CPUs, its clock set by the test, its events kept. */
function watch() {
  const dp = new DataplaneModel();
  let now = 0;
  const events: NewEvent[] = [];
  const plans = new Map([[1, plan(1)]]);
  const flood = new FloodWatch({
    dp,
    plans: () => plans.values(),
    floodThreshold: THRESHOLD,
    publish: (e) => events.push(e),
    now: () => now,
  });
  const counts = [0, 0];
  /** One second on, with these new flows per CPU in it, then a sample. */
  const second = (perCpu: number[]) => {
    perCpu.forEach((n, cpu) => (counts[cpu]! += n));
    dp.newFlowsByVip.set(1, [...counts]);
    now += 1000;
    flood.sample();
  };
  return { dp, plans, flood, events, second };
}

test('the watch turns per-CPU counters into rates, and publishes a flood start and end event', () => {
  const { flood, events, second } = watch();
  second([0, 0]);
  // The first reading ends no window: no rates yet.
  expect(flood.view()).toEqual({ active: false, since: null, threshold: THRESHOLD, peakPerSecond: null, newFlowsPerSecond: [] });
  second([10, 1500]);
  second([20, 2500]);
  // The flood of this test: from the window at 1 s, at most 2520 new flows/s over both CPUs.
  const floodEvent = (active: boolean, fields: { newFlowsPerSecond: number[]; durationSeconds: number; newFlows: number }) => ({
    type: 'flood',
    active,
    threshold: THRESHOLD,
    peakPerSecond: 2520,
    since: new Date(1000).toISOString(),
    ...fields,
  });
  expect(events).toEqual([floodEvent(true, { newFlowsPerSecond: [20, 2500], durationSeconds: 2, newFlows: 4030 })]);
  expect(flood.view()).toEqual({
    active: true,
    since: new Date(1000).toISOString(),
    threshold: THRESHOLD,
    peakPerSecond: 2520,
    newFlowsPerSecond: [20, 2500],
  });
  second([0, 800]);
  for (let i = 0; i < 10; i++) second([0, 100]);
  expect(events[1]).toEqual(floodEvent(false, { newFlowsPerSecond: [0, 100], durationSeconds: 3, newFlows: 4830 }));
  expect(flood.view().active).toBe(false);
  expect(eventText({ ...events[0]!, id: 1, at: '' })).toBe(
    'flood: new flows at 2520/s over all CPUs, over the threshold of 1000/s (per CPU now: 20, 2500)',
  );
  expect(eventText({ ...events[1]!, id: 2, at: '' })).toBe(
    'flood over after 3 s: 4830 new flows, at most 2520/s over all CPUs (threshold 1000/s)',
  );
});

test('a VIP removed or added between readings: the rates count only new flows, the totals never fall', () => {
  const { dp, plans, flood, second } = watch();
  second([0, 0]);
  second([5000, 5000]);
  const before = flood.totals().newFlows;
  expect(before).toEqual([5000, 5000]);
  plans.delete(1);
  second([0, 0]);
  expect(flood.view().newFlowsPerSecond).toEqual([0, 0]);
  expect(flood.totals().newFlows).toEqual(before);
  // A VIP added with its stats zeroed: its first reading's flows are new ones, counted once.
  plans.set(2, plan(2));
  dp.newFlowsByVip.set(2, [30, 40]);
  second([0, 0]);
  expect(flood.view().newFlowsPerSecond).toEqual([30, 40]);
  expect(flood.totals().newFlows).toEqual([before[0]! + 30, before[1]! + 40]);
  // Its id given to another VIP between two readings: that one counts from 0 too.
  plans.set(2, plan(2, 81));
  dp.resetVipStats(2);
  dp.newFlowsByVip.set(2, [3, 4]);
  second([0, 0]);
  expect(flood.view().newFlowsPerSecond).toEqual([3, 4]);
  expect(flood.totals().newFlows).toEqual([before[0]! + 33, before[1]! + 44]);
});
