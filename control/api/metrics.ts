/**
 * GET /metrics: Prometheus text from prom-client. The data plane's counters and the
 * daemon's state are read at scrape time (metrics/scrape-metrics.ts), health checks
 * counted as they finish (metrics/health-metrics.ts), beside the process's own
 * metrics (metrics/process-metrics.ts).
 */
import { Registry } from 'prom-client';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
import { registerHealthMetrics } from './metrics/health-metrics.js';
import { processRegistry } from './metrics/process-metrics.js';
import { registerScrapeMetrics, type Snapshot } from './metrics/scrape-metrics.js';
import { metricsSchema } from './text-schemas.js';

/** The registry of one app's metrics, and the function that unsubscribes them from the controller. */
function createRegistry(controller: Controller): { registry: Registry; close: () => void } {
  const own = new Registry();
  // One snapshot per scrape, shared by every metric's collect().
  let snapshot: Snapshot | null = null;
  const current = () => (snapshot ??= { stats: controller.stats(), vips: controller.vips() });
  registerScrapeMetrics(own, controller, current);
  const close = registerHealthMetrics(own, controller, current);

  const registry = Registry.merge([own, processRegistry()]);
  const metrics = registry.metrics.bind(registry);
  registry.metrics = async () => {
    snapshot = null;
    try {
      return await metrics();
    } finally {
      snapshot = null;
    }
  };
  return { registry, close };
}

export const metricsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  const { registry, close } = createRegistry(controller);
  app.addHook('onClose', async () => close());
  app.get('/metrics', { schema: metricsSchema }, async (_, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
};
