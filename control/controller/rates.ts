/**
 * Packet and byte rates over windows of at least a tick: a read ends the current window
 * only when it is a tick old, so every reader (/v1/stats, /metrics, the event stream)
 * within a tick gets the same window and none shortens another's, and a daemon nobody
 * reads reads no counters (a sample of 100,000 backends' per-CPU counters takes ~0.8 s).
 */
import type { DataplanePort } from '../dataplane/port.js';
import type { VipPlan } from '../reconciler/plan.js';
import type { StatsView } from './views.js';

export interface Totals {
  packets: number;
  bytes: number;
}

export interface Rates {
  packetsPerSecond: number;
  bytesPerSecond: number;
}

interface Sample {
  /** When the totals were read (ms). */
  at: number;
  totals: ReadonlyMap<string, Totals>;
}

const NO_RATES: Rates = { packetsPerSecond: 0, bytesPerSecond: 0 };

export class RateWindow {
  private previous: Sample | null = null;
  private latest: Sample | null = null;

  /** Ends the current window with the counters' `totals` (by counter key) read at `at` (ms). */
  sample(at: number, totals: ReadonlyMap<string, Totals>): void {
    this.previous = this.latest;
    this.latest = { at, totals };
  }

  /** When the last window ended (ms), or null before the first sample. */
  get endedAt(): number | null {
    return this.latest?.at ?? null;
  }

  /** The per-second rates of one counter over the last completed window; zero before there is one or for a counter new in it. */
  rates(key: string): Rates {
    const before = this.previous?.totals.get(key);
    const after = this.latest?.totals.get(key);
    const seconds = this.previous && this.latest ? (this.latest.at - this.previous.at) / 1000 : 0;
    if (!before || !after || seconds <= 0) return NO_RATES;
    // A counter that went back (its map was replaced) has no rate for this window.
    return {
      packetsPerSecond: Math.max(0, (after.packets - before.packets) / seconds),
      bytesPerSecond: Math.max(0, (after.bytes - before.bytes) / seconds),
    };
  }
}

/** Keys of the counters in a rate window. */
const vipCounter = (id: number) => `vip:${id}`;
const backendCounter = (id: number) => `backend:${id}`;

/** The VIPs' and backends' traffic: totals read from the maps, rates from a RateWindow. */
export class Traffic {
  private readonly window = new RateWindow();

  constructor(private readonly dp: Pick<DataplanePort, 'statsSnapshot' | 'counters' | 'flowTableUse'>) {}

  /** When the last window ended (ms), or null before the first sample. */
  get sampledAt(): number | null {
    return this.window.endedAt;
  }

  /** Ends a window with the counters of the planned VIPs and their backends, read at `at` (ms). */
  sample(plans: Iterable<VipPlan>, at: number): void {
    const snapshot = this.dp.statsSnapshot();
    const totals = new Map<string, Totals>();
    for (const { vip } of plans) {
      totals.set(vipCounter(vip.id), snapshot.vip(vip.id));
      for (const b of vip.backends) totals.set(backendCounter(b.id), snapshot.backend(b.id));
    }
    this.window.sample(at, totals);
  }

  /** Totals now, rates over the last completed window. */
  view(plans: Iterable<VipPlan>): StatsView {
    const snapshot = this.dp.statsSnapshot();
    const { backendFlows, ...flowTable } = this.dp.flowTableUse();
    const vips = [...plans].map(({ vip }) => {
      const v = snapshot.vip(vip.id);
      return {
        protocol: vip.protocol,
        address: vip.address,
        port: vip.port,
        packets: v.packets,
        bytes: v.bytes,
        ...this.window.rates(vipCounter(vip.id)),
        flowHits: v.flow_hits,
        flowMisses: v.flow_misses,
        flows: vip.backends.reduce((sum, b) => sum + backendFlows(b.id), 0),
        backends: vip.backends.map((b) => {
          const t = snapshot.backend(b.id);
          const flows = backendFlows(b.id);
          return { address: b.address, packets: t.packets, bytes: t.bytes, ...this.window.rates(backendCounter(b.id)), flows };
        }),
      };
    });
    return { at: new Date().toISOString(), vips, outcomes: this.dp.counters(), flowTable };
  }
}
