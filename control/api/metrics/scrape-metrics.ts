/**
 * The metrics read at scrape time: the data plane's counters, each VIP's and
 * backend's settings and state, and the daemon's. Each metric's collect() fills it
 * from one snapshot of the controller per scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { healthSchema } from '../../checks/health.js';
import type { Controller } from '../../controller/controller.js';
import type { StatsView, VipView } from '../../controller/views.js';
import { backendSpecSchema } from '../../state/schema.js';
import { BACKEND_LABELS, backendLabels, type Labels, VIP_LABELS, vipLabels } from './labels.js';

/** What one scrape reads from the controller, read once and shared by every metric. */
export interface Snapshot {
  stats: StatsView;
  vips: VipView[];
}

type Fill = (set: (labels: Labels, value: number) => void) => void;
type FlowClass = keyof StatsView['flowTable']['states'];

const BACKEND_STATES = backendSpecSchema.shape.state.unwrap().options;

export function registerScrapeMetrics(registry: Registry, controller: Controller, current: () => Snapshot): void {
  // Counters mirror kernel counters, so collect() sets their value rather than adding.
  const metric = (kind: 'counter' | 'gauge', name: string, help: string, labelNames: string[], fill: Fill) => {
    const config = {
      name,
      help,
      labelNames,
      registers: [registry],
      collect(this: Counter | Gauge) {
        this.reset();
        fill((labels, value) => (this instanceof Gauge ? this.set(labels, value) : this.inc(labels, value)));
      },
    };
    return kind === 'counter' ? new Counter(config) : new Gauge(config);
  };
  const counter = (name: string, help: string, labelNames: string[], fill: Fill) => metric('counter', name, help, labelNames, fill);
  const gauge = (name: string, help: string, labelNames: string[], fill: Fill) => metric('gauge', name, help, labelNames, fill);
  /** One series per backend of /v1/vips, with `labels` beside the backend's. */
  const perBackend =
    (fill: (b: VipView['backends'][number], set: (labels: Labels, value: number) => void) => void): Fill =>
    (set) => {
      for (const v of current().vips)
        for (const b of v.backends) fill(b, (labels, value) => set({ ...backendLabels(v, b.address), ...labels }, value));
    };

  for (const unit of ['packets', 'bytes'] as const) {
    const Unit = unit === 'packets' ? 'Packets' : 'Bytes';
    counter(`xlb_${unit}_total`, `${Unit} the balancer saw, by outcome`, ['outcome'], (set) => {
      for (const [outcome, t] of Object.entries(current().stats.outcomes)) set({ outcome }, t[unit]);
    });
    counter(`xlb_backend_${unit}_total`, `${Unit} forwarded per backend`, BACKEND_LABELS, (set) => {
      for (const v of current().stats.vips) for (const b of v.backends) set(backendLabels(v, b.address), b[unit]);
    });
  }
  const vipCounters = [
    ['xlb_vip_packets_total', 'Packets forwarded per VIP', 'packets'],
    ['xlb_vip_bytes_total', 'Bytes forwarded per VIP', 'bytes'],
    ['xlb_vip_flow_table_hits_total', 'Connection-table hits per VIP', 'flowHits'],
    ['xlb_vip_flow_table_misses_total', 'Connection-table misses (new flows) per VIP', 'flowMisses'],
  ] as const;
  for (const [name, help, field] of vipCounters)
    counter(name, help, VIP_LABELS, (set) => {
      for (const v of current().stats.vips) set(vipLabels(v), v[field]);
    });
  /** A gauge per value of a backend's enum: 1 for the one it has, 0 for the others. */
  const backendEnum = (name: string, help: string, label: 'health' | 'state', values: readonly string[]) =>
    gauge(
      name,
      help,
      [...BACKEND_LABELS, label],
      perBackend((b, set) => {
        for (const value of values) set({ [label]: value }, b[label] === value ? 1 : 0);
      }),
    );
  backendEnum(
    'xlb_backend_health',
    'What its health checks decided: 1 for the current one of up, down and unknown',
    'health',
    healthSchema.options,
  );
  backendEnum(
    'xlb_backend_state',
    'The configured state: 1 for the current one of active and drain (no new flows)',
    'state',
    BACKEND_STATES,
  );
  gauge(
    'xlb_backend_in_ring',
    '1 when the backend takes new flows',
    BACKEND_LABELS,
    perBackend((b, set) => set({}, b.inRing ? 1 : 0)),
  );
  gauge(
    'xlb_backend_weight',
    'Configured weight',
    BACKEND_LABELS,
    perBackend((b, set) => set({}, b.weight)),
  );
  gauge('xlb_vip_panic', '1 while the VIP is in panic mode', VIP_LABELS, (set) => {
    for (const v of current().vips) set(vipLabels(v), v.panic ? 1 : 0);
  });
  gauge('xlb_attached', '1 while the balancer is the XDP program on the interface', [], (set) => set({}, controller.attached ? 1 : 0));
  counter('xlb_internal_errors_total', 'Failures the daemon caught and went on from, by component', ['component'], (set) => {
    for (const e of controller.errors.list()) set({ component: e.component }, e.count);
  });
  gauge('xlb_up', '1 when the program is attached and the state applied', [], (set) => set({}, controller.status().ready ? 1 : 0));
  gauge(
    'xlb_warnings',
    'Warnings /v1/status gives now (probe ports held by other processes, a lost source, a filter ahead of xlb_probe, ...)',
    [],
    (set) => set({}, controller.status().warnings.length),
  );
  gauge('xlb_flow_table_slots', 'Flows the connection table has room for (--max-flows, rounded up)', [], (set) =>
    set({}, current().stats.flowTable.slots),
  );
  /** A series per state of a table entry: new, established, closing. */
  const byFlowClass =
    (label: string, counts: () => Record<FlowClass, number>): Fill =>
    (set) => {
      for (const [value, count] of Object.entries(counts())) set({ [label]: value }, count);
    };
  gauge(
    'xlb_flow_table_flows',
    'Flows the connection table holds, by state (counted in up to 65,536 buckets, scaled to the whole table)',
    ['state'],
    byFlowClass('state', () => current().stats.flowTable.states),
  );
  counter(
    'xlb_flow_evictions_total',
    "New flows recorded over another flow's entry, by the state of the flow evicted (while the daemon runs)",
    ['class'],
    byFlowClass('class', () => current().stats.flowTable.evictions),
  );
  counter(
    'xlb_flow_unrecorded_total',
    'Packets of new flows that found no table entry and no way to take (every packet of such a flow counts; it goes by the ring)',
    [],
    (set) => set({}, current().stats.flowTable.unrecorded),
  );
  counter(
    'xlb_flow_new_total',
    'New flows of the configured VIPs given an entry (misses less unrecorded packets), by online CPU',
    ['cpu'],
    (set) => controller.flood.totals().newFlows.forEach((count, cpu) => set({ cpu: String(cpu) }, count)),
  );
  gauge('xlb_flood_active', '1 while new flows over all CPUs come at a flood rate (see --flood-threshold)', [], (set) =>
    set({}, current().stats.flood.active ? 1 : 0),
  );
  gauge('xlb_build_info', 'Always 1: the labels say which xlb and which Node.js run', ['version', 'nodejs_version'], (set) =>
    set({ version: controller.status().version, nodejs_version: process.version }, 1),
  );
}
