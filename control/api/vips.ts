/** /v1/status, /v1/vips (+ backends) and /v1/stats. */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Controller } from '../controller/controller.js';
import { type ClientIdentity, statsSchema, statusSchema, vipListSchema, vipViewSchema } from '../controller/views.js';
import { backendBodySchema, backendParamsSchema, errorSchema, vipBodySchema, vipParamsSchema } from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema, 429: errorSchema, 503: errorSchema };

export const vipRoutes: FastifyPluginAsyncZod<{
  controller: Controller;
  mutationsPerMinute: number;
  /** Who sent a change, for its event. */
  identify: (request: FastifyRequest) => ClientIdentity;
}> = async (app, { controller, mutationsPerMinute, identify }) => {
  const limited = { rateLimit: { max: mutationsPerMinute, timeWindow: 60_000 } };
  app.get('/v1/status', { schema: { summary: 'Daemon status', response: { 200: statusSchema, 401: errorSchema } } }, async () =>
    controller.status(),
  );

  app.get(
    '/v1/vips',
    { schema: { summary: 'All VIPs with their backends', response: { 200: vipListSchema, 401: errorSchema } } },
    async () => ({
      vips: controller.vips(),
    }),
  );

  app.put(
    '/v1/vips/:protocol/:address/:port',
    {
      config: limited,
      schema: {
        summary: 'Create (201) or replace (200) a VIP',
        params: vipParamsSchema,
        body: vipBodySchema,
        response: { 200: vipViewSchema, 201: vipViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { created, vip } = await controller.putVip(request.params, request.body, identify(request));
      return reply.code(created ? 201 : 200).send(vip);
    },
  );

  app.get(
    '/v1/vips/:protocol/:address/:port',
    {
      schema: {
        summary: 'A VIP with its backends, weights, states and health',
        params: vipParamsSchema,
        response: { 200: vipViewSchema, ...errors },
      },
    },
    async (request) => controller.vip(request.params),
  );

  app.delete(
    '/v1/vips/:protocol/:address/:port',
    {
      config: limited,
      schema: {
        summary: 'Remove a VIP and its backends',
        params: vipParamsSchema,
        response: { 204: z.null().describe('Removed'), ...errors },
      },
    },
    async (request, reply) => {
      await controller.deleteVip(request.params, identify(request));
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/vips/:protocol/:address/:port/backends/:backend',
    {
      config: limited,
      schema: {
        summary: 'Add (201) or update (200) a backend',
        params: backendParamsSchema,
        body: backendBodySchema,
        response: { 200: vipViewSchema, 201: vipViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { backend, ...key } = request.params;
      const { created, vip } = await controller.putBackend(key, backend, request.body, identify(request));
      return reply.code(created ? 201 : 200).send(vip);
    },
  );

  app.delete(
    '/v1/vips/:protocol/:address/:port/backends/:backend',
    {
      config: limited,
      schema: {
        summary: 'Remove a backend; its flows re-hash',
        params: backendParamsSchema,
        response: { 204: z.null().describe('Removed'), ...errors },
      },
    },
    async (request, reply) => {
      const { backend, ...key } = request.params;
      await controller.deleteBackend(key, backend, identify(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/stats',
    { schema: { summary: 'Packets, bytes and rates per VIP and backend', response: { 200: statsSchema, 401: errorSchema } } },
    async () => controller.stats(),
  );
};
