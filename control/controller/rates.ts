/**
 * Packet and byte rates over fixed windows of one tick: while anyone reads rates (a read
 * keeps the windows going for a while) or follows the event stream, a timer ends a window
 * every tick, and every reader gets the last completed one, whoever asked before. A
 * daemon nobody reads reads no counters (a sample of 100,000 backends' per-CPU counters
 * takes ~0.8 s); the first read after that waits for one window.
 */
import type { DataplanePort } from '../dataplane/port.js';
import type { VipPlan } from '../reconciler/plan.js';
import type { FloodWatch } from './flood.js';
import type { StatsView } from './views.js';

export interface Totals {
  packets: number;
  bytes: number;
}

export interface Rates {
  packetsPerSecond: number;
  bytesPerSecond: number;
}

/** The window rates are over (ISO 8601 times). */
export interface Span {
  start: string;
  end: string;
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

  /** Forgets every window: the next one starts at the next sample. */
  reset(): void {
    this.previous = this.latest = null;
  }

  /** The last completed window, or null before one has ended. */
  get span(): Span | null {
    if (!this.previous || !this.latest) return null;
    return { start: new Date(this.previous.at).toISOString(), end: new Date(this.latest.at).toISOString() };
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

export interface TrafficOptions {
  dp: Pick<DataplanePort, 'statsSnapshot' | 'counters' | 'flowTableUse'>;
  /** The VIPs whose counters are read. */
  plans: () => Iterable<VipPlan>;
  /** A window's length (ms). */
  tickMs: number;
  /** Windows go on ending this long (ms) after the last read. */
  idleMs: number;
  /** Whether someone follows every window (the event stream): it keeps the windows going. */
  following: () => boolean;
  /** Hears each completed window while `following()`. */
  onWindow: (stats: StatsView) => void;
  onError: (error: unknown) => void;
  /** The flood state and the table's evictions and unrecorded packets (counters that only grow), shown with the stats. */
  flood: Pick<FloodWatch, 'view' | 'totals'>;
}

/** The VIPs' and backends' traffic: totals read from the maps, rates over fixed windows. */
export class Traffic {
  private readonly window = new RateWindow();
  private timer: NodeJS.Timeout | null = null;
  private readUntil = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly options: TrafficOptions) {}

  /** Totals now and rates over a completed window; when the windows are idle, starts them and waits for the first. */
  async read(): Promise<StatsView> {
    this.keepGoing();
    if (!this.window.span) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return this.view();
  }

  /** Keeps the windows ending every tick for `idleMs` from now, starting them when idle. */
  keepGoing(): void {
    this.readUntil = Date.now() + this.options.idleMs;
    if (this.timer) return;
    this.window.reset();
    this.sample();
    this.timer = setTimeout(() => this.tick(), this.options.tickMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.window.reset();
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  /** Totals now; rates over the last completed window (none while the windows are idle). */
  view(): StatsView {
    const snapshot = this.options.dp.statsSnapshot();
    const { backendFlows, ...flowTable } = this.options.dp.flowTableUse();
    const vips = [...this.options.plans()].map(({ vip }) => {
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
    const { evictions, unrecorded } = this.options.flood.totals();
    return {
      at: new Date().toISOString(),
      window: this.window.span,
      vips,
      outcomes: this.options.dp.counters(),
      flowTable: { ...flowTable, evictions, unrecorded },
      flood: this.options.flood.view(),
    };
  }

  private tick(): void {
    this.timer = null;
    const following = this.options.following();
    if (!following && Date.now() > this.readUntil) {
      this.window.reset();
      return;
    }
    this.timer = setTimeout(() => this.tick(), this.options.tickMs);
    this.sample();
    for (const resolve of this.waiting.splice(0)) resolve();
    if (following) this.guard(() => this.options.onWindow(this.view()));
  }

  /** Ends a window with the counters of the planned VIPs and their backends. */
  private sample(): void {
    this.guard(() => {
      const snapshot = this.options.dp.statsSnapshot();
      const totals = new Map<string, Totals>();
      for (const { vip } of this.options.plans()) {
        totals.set(vipCounter(vip.id), snapshot.vip(vip.id));
        for (const b of vip.backends) totals.set(backendCounter(b.id), snapshot.backend(b.id));
      }
      this.window.sample(Date.now(), totals);
    });
  }

  private guard(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.options.onError(error);
    }
  }
}
