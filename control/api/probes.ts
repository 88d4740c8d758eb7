/** GET /healthz and /readyz: probes for a supervisor or a load balancer in front, answered without a token. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Controller } from '../controller/controller.js';
import { documented, errorResponses } from './schemas.js';

const readinessSchema = z.object({
  ready: z.boolean().describe('Attached and the desired state applied'),
  attached: z.boolean().describe('The balancer is the XDP program on the interface'),
});

export const probeRoutes: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealthz',
        tags: ['probes'],
        summary: 'Liveness: the daemon answers',
        security: [],
        response: {
          200: documented(z.object({ status: z.literal('ok') }), 'The daemon runs', { status: 'ok' }),
          500: errorResponses[500],
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadyz',
        tags: ['probes'],
        summary: 'Readiness: the balancer is attached and the desired state applied',
        security: [],
        response: {
          200: documented(readinessSchema, 'Ready', { ready: true, attached: true }),
          503: documented(readinessSchema, 'Not ready: not attached yet, or the state not yet applied', { ready: false, attached: false }),
          500: errorResponses[500],
        },
      },
    },
    async (_, reply) => {
      const status = controller.status();
      return reply.code(status.ready ? 200 : 503).send({ ready: status.ready, attached: status.attached });
    },
  );
};
