/** Rates over fixed windows (controller/rates.ts): no kernel, vitest's clock. */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { RateWindow, type Totals, Traffic } from '../../control/controller/rates.js';
import { vipStatsCodec } from '../../control/dataplane/codec.js';
import type { DataplanePort } from '../../control/dataplane/port.js';
import type { VipPlan } from '../../control/reconciler/plan.js';

const totals = (entries: Record<string, Totals>) => new Map(Object.entries(entries));

describe('RateWindow', () => {
  test("no rates before a window has ended, then the last window's, however often they are read", () => {
    const window = new RateWindow();
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
    window.sample(10_000, totals({ 'vip:1': { packets: 100, bytes: 6_000 } }));
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
    window.sample(12_000, totals({ 'vip:1': { packets: 300, bytes: 18_000 } }));
    for (let read = 0; read < 3; read++) expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 100, bytesPerSecond: 6_000 });
    window.sample(13_000, totals({ 'vip:1': { packets: 310, bytes: 18_600 } }));
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 10, bytesPerSecond: 600 });
  });

  test('a counter new in the window, gone from it, or gone back has no rate', () => {
    const window = new RateWindow();
    window.sample(0, totals({ 'vip:1': { packets: 50, bytes: 500 }, 'vip:2': { packets: 5, bytes: 50 } }));
    window.sample(1_000, totals({ 'vip:1': { packets: 10, bytes: 100 }, 'vip:3': { packets: 7, bytes: 70 } }));
    for (const key of ['vip:1', 'vip:2', 'vip:3']) expect(window.rates(key)).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
  });
});

describe('Traffic: fixed windows while someone reads', () => {
  // One VIP (id 1) whose counter the test sets; the clock and timers are vitest's.
  const setup = (following = () => false) => {
    let packets = 0;
    let samples = 0;
    const windows: number[] = [];
    const traffic = new Traffic({
      dp: {
        statsSnapshot: () => {
          samples++;
          return {
            vip: () => ({ ...vipStatsCodec.decode(Buffer.alloc(vipStatsCodec.size)), packets, bytes: packets * 100 }),
            backend: () => ({ packets: 0, bytes: 0 }),
          };
        },
        counters: () => ({}) as ReturnType<Pick<DataplanePort, 'counters'>['counters']>,
        flowTableUse: () => ({ slots: 0, flows: 0, states: { new: 0, established: 0, closing: 0 }, backendFlows: () => 0 }),
      },
      plans: () => [{ vip: { id: 1, protocol: 'tcp', address: '198.19.0.1', port: 80, backends: [] } } as unknown as VipPlan],
      tickMs: 1000,
      idleMs: 5000,
      following,
      onWindow: (stats) => windows.push(stats.vips[0]!.packetsPerSecond),
      onError: (error) => {
        throw error;
      },
      flood: {
        view: () => ({ active: false, since: null, threshold: 1, peakPerSecond: null, newFlowsPerSecond: [] }),
        totals: () => ({ newFlows: [], evictions: { new: 0, established: 0, closing: 0 }, unrecorded: 0 }),
      },
    });
    return { traffic, windows, add: (n: number) => (packets += n), samples: () => samples };
  };

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('a read after idle waits for one whole window; readers in it share it; the next starts where it ended', async () => {
    const { traffic, add } = setup();
    const first = traffic.read();
    add(50);
    await vi.advanceTimersByTimeAsync(1000);
    const stats = await first;
    expect(stats.window).toEqual({ start: new Date(1_000_000).toISOString(), end: new Date(1_001_000).toISOString() });
    expect(stats.vips[0]).toMatchObject({ packets: 50, packetsPerSecond: 50, bytesPerSecond: 5000 });
    add(7);
    await vi.advanceTimersByTimeAsync(400);
    // Another reader within the window: the same window and rates, not one of its own.
    expect((await traffic.read()).vips[0]).toMatchObject({ packets: 57, packetsPerSecond: 50 });
    await vi.advanceTimersByTimeAsync(600);
    const next = traffic.view();
    expect(next.window).toEqual({ start: stats.window!.end, end: new Date(1_002_000).toISOString() });
    expect(next.vips[0]).toMatchObject({ packetsPerSecond: 7 });
    traffic.stop();
  });

  test('nobody reading: the windows stop after idleMs and no counters are read; the next read starts afresh', async () => {
    const { traffic, add, samples } = setup();
    await Promise.all([traffic.read(), vi.advanceTimersByTimeAsync(1000)]);
    await vi.advanceTimersByTimeAsync(6000);
    expect(traffic.view().window).toBeNull();
    const idleSamples = samples();
    add(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(samples()).toBe(idleSamples);
    // The traffic of the idle minute is not spread over a window that spans it.
    const read = traffic.read();
    add(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect((await read).vips[0]).toMatchObject({ packetsPerSecond: 3 });
    traffic.stop();
  });

  test('a follower keeps the windows going and hears each one', async () => {
    let following = true;
    const { traffic, windows, add } = setup(() => following);
    traffic.keepGoing();
    for (const n of [5, 6, 7]) {
      add(n);
      await vi.advanceTimersByTimeAsync(1000);
    }
    await vi.advanceTimersByTimeAsync(10_000);
    expect(windows.slice(0, 3)).toEqual([5, 6, 7]);
    following = false;
    const heard = windows.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(windows.length).toBe(heard);
    expect(traffic.view().window).toBeNull();
    traffic.stop();
  });
});
