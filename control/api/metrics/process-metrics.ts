/** Node.js's and the process's own metrics (prom-client's defaults), collected once per process. */
import { collectDefaultMetrics, Registry } from 'prom-client';

/** Gauges named like counters, which `promtool check metrics` rejects; each is the sum of its unsuffixed twin's series by type. */
const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

let registry: Registry | undefined;

/** The registry of the process metrics: one for every app, since their collectors watch the whole process. */
export function processRegistry(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
    for (const name of MISNAMED) registry.removeSingleMetric(name);
  }
  return registry;
}
