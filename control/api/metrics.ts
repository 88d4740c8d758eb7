/**
 * GET /metrics: Prometheus text from prom-client, read from the maps at scrape time
 * (each metric's collect() fills it from the controller).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
import { vipKeyText } from '../state/schema.js';
import { metricsSchema } from './text-schemas.js';

function createRegistry(controller: Controller): Registry {
  const registry = new Registry();
  // One snapshot per scrape, shared by every metric's collect().
  let snapshot: {
    stats: ReturnType<Controller['stats']>;
    vips: ReturnType<Controller['vips']>;
    flowTable: ReturnType<Controller['flowTable']>;
  } | null = null;
  const current = () => (snapshot ??= { stats: controller.stats(), vips: controller.vips(), flowTable: controller.flowTable() });

  type Fill = (set: (labels: Record<string, string>, value: number) => void) => void;
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

  counter('xlb_packets_total', 'Packets the balancer saw, by outcome', ['reason'], (set) => {
    for (const [reason, t] of Object.entries(current().stats.outcomes)) set({ reason }, t.packets);
  });
  counter('xlb_bytes_total', 'Bytes the balancer saw, by outcome', ['reason'], (set) => {
    for (const [reason, t] of Object.entries(current().stats.outcomes)) set({ reason }, t.bytes);
  });
  counter('xlb_vip_packets_total', 'Packets forwarded per VIP', ['vip'], (set) => {
    for (const v of current().stats.vips) set({ vip: vipKeyText(v) }, v.packets);
  });
  counter('xlb_vip_bytes_total', 'Bytes forwarded per VIP', ['vip'], (set) => {
    for (const v of current().stats.vips) set({ vip: vipKeyText(v) }, v.bytes);
  });
  counter('xlb_vip_flow_table_hits_total', 'Connection-table hits per VIP', ['vip'], (set) => {
    for (const v of current().stats.vips) set({ vip: vipKeyText(v) }, v.flowHits);
  });
  counter('xlb_vip_flow_table_misses_total', 'Connection-table misses (new flows) per VIP', ['vip'], (set) => {
    for (const v of current().stats.vips) set({ vip: vipKeyText(v) }, v.flowMisses);
  });
  counter('xlb_backend_packets_total', 'Packets forwarded per backend', ['vip', 'backend'], (set) => {
    for (const v of current().stats.vips) for (const b of v.backends) set({ vip: vipKeyText(v), backend: b.address }, b.packets);
  });
  counter('xlb_backend_bytes_total', 'Bytes forwarded per backend', ['vip', 'backend'], (set) => {
    for (const v of current().stats.vips) for (const b of v.backends) set({ vip: vipKeyText(v), backend: b.address }, b.bytes);
  });
  gauge('xlb_backend_healthy', '1 when the backend passes its health check', ['vip', 'backend'], (set) => {
    for (const v of current().vips) for (const b of v.backends) set({ vip: vipKeyText(v), backend: b.address }, b.health === 'up' ? 1 : 0);
  });
  gauge('xlb_backend_in_ring', '1 when the backend takes new flows', ['vip', 'backend'], (set) => {
    for (const v of current().vips) for (const b of v.backends) set({ vip: vipKeyText(v), backend: b.address }, b.inRing ? 1 : 0);
  });
  gauge('xlb_backend_weight', 'Configured weight', ['vip', 'backend'], (set) => {
    for (const v of current().vips) for (const b of v.backends) set({ vip: vipKeyText(v), backend: b.address }, b.weight);
  });
  gauge('xlb_vip_panic', '1 while the VIP is in panic mode', ['vip'], (set) => {
    for (const v of current().vips) set({ vip: vipKeyText(v) }, v.panic ? 1 : 0);
  });
  gauge('xlb_attached', '1 while the balancer is the XDP program on the interface', [], (set) => set({}, controller.attached ? 1 : 0));
  counter('xlb_internal_errors_total', 'Failures the daemon caught and went on from, by component', ['component'], (set) => {
    for (const e of controller.errors.list()) set({ component: e.component }, e.count);
  });
  gauge('xlb_up', '1 when the program is attached and the state applied', [], (set) => set({}, controller.status().ready ? 1 : 0));
  gauge('xlb_flow_table_slots', 'Flows the connection table has room for (--max-flows, rounded up)', [], (set) =>
    set({}, current().flowTable.slots),
  );
  gauge(
    'xlb_flow_table_flows',
    'Flows the connection table holds (counted in up to 65,536 buckets, scaled to the whole table)',
    [],
    (set) => set({}, current().flowTable.flows),
  );

  gauge('xlb_build_info', 'Always 1: the labels say which xlb and which Node.js run', ['version', 'nodejs_version'], (set) =>
    set({ version: controller.status().version, nodejs_version: process.version }, 1),
  );

  const metrics = registry.metrics.bind(registry);
  registry.metrics = async () => {
    snapshot = null;
    try {
      return await metrics();
    } finally {
      snapshot = null;
    }
  };
  return registry;
}

export const metricsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  const registry = createRegistry(controller);
  app.get('/metrics', { schema: metricsSchema }, async (_, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
};
