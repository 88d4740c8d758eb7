/** /v1/status, /v1/vips (+ backends) and /v1/stats. */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Controller } from '../controller/controller.js';
import { type ClientIdentity, statsSchema, statusSchema, vipListSchema, vipViewSchema } from '../controller/views.js';
import { statsExample, statusExample, vipExample, vipListExample } from './examples.js';
import {
  backendBodySchema,
  backendParamsSchema,
  backendPatchBodySchema,
  documented,
  errorsOf,
  vipBodySchema,
  vipParamsSchema,
} from './schemas.js';

const readErrors = errorsOf(401, 500);
const keyedReadErrors = errorsOf(400, 401, 404, 414, 500);
/** A change: its path and body, the state, the host and the limits may refuse it. */
const changeErrors = errorsOf(400, 401, 409, 413, 414, 415, 429, 500, 503);
/** A change to a VIP or backend that must exist. */
const existingChangeErrors = errorsOf(400, 401, 404, 409, 413, 414, 415, 429, 500, 503);
const removed = z.undefined().describe('Removed');

export const vipRoutes: FastifyPluginAsyncZod<{
  controller: Controller;
  mutationsPerMinute: number;
  /** Who sent a change, for its event. */
  identify: (request: FastifyRequest) => ClientIdentity;
}> = async (app, { controller, mutationsPerMinute, identify }) => {
  const limited = { rateLimit: { max: mutationsPerMinute, timeWindow: 60_000 } };
  app.get(
    '/v1/status',
    {
      schema: {
        operationId: 'getStatus',
        tags: ['status'],
        summary: 'Daemon status',
        response: { 200: documented(statusSchema, 'The daemon, its interface and what it applied', statusExample), ...readErrors },
      },
    },
    async () => controller.status(),
  );

  app.get(
    '/v1/vips',
    {
      schema: {
        operationId: 'listVips',
        tags: ['vips'],
        summary: 'All VIPs with their backends',
        response: { 200: documented(vipListSchema, 'Every VIP', vipListExample), ...readErrors },
      },
    },
    async () => ({
      vips: controller.vips(),
    }),
  );

  app.put(
    '/v1/vips/:protocol/:address/:port',
    {
      config: limited,
      schema: {
        operationId: 'putVip',
        tags: ['vips'],
        summary: 'Create (201) or replace (200) a VIP',
        params: vipParamsSchema,
        body: vipBodySchema,
        response: {
          200: documented(vipViewSchema, 'Replaced: its backends stay', vipExample),
          201: documented(vipViewSchema, 'Created', { ...vipExample, ringBackends: 0, backends: [] }),
          ...changeErrors,
        },
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
        operationId: 'getVip',
        tags: ['vips'],
        summary: 'A VIP with its backends, weights, states and health',
        params: vipParamsSchema,
        response: { 200: documented(vipViewSchema, 'The VIP', vipExample), ...keyedReadErrors },
      },
    },
    async (request) => controller.vip(request.params),
  );

  app.delete(
    '/v1/vips/:protocol/:address/:port',
    {
      config: limited,
      schema: {
        operationId: 'deleteVip',
        tags: ['vips'],
        summary: 'Remove a VIP and its backends',
        params: vipParamsSchema,
        response: { 204: removed, ...existingChangeErrors },
      },
    },
    async (request, reply) => {
      await controller.deleteVip(request.params, identify(request));
      return reply.code(204).send();
    },
  );

  app.put(
    '/v1/vips/:protocol/:address/:port/backends/:backend',
    {
      config: limited,
      schema: {
        operationId: 'putBackend',
        tags: ['vips'],
        summary: 'Add (201) or update (200) a backend',
        description: 'Answers the whole VIP. PUT replaces: a field left out takes its default.',
        params: backendParamsSchema,
        body: backendBodySchema,
        response: {
          200: documented(vipViewSchema, 'Updated; the VIP with its backends', vipExample),
          201: documented(vipViewSchema, 'Added; the VIP with its backends', vipExample),
          ...existingChangeErrors,
        },
      },
    },
    async (request, reply) => {
      const { backend, ...key } = request.params;
      const { created, vip } = await controller.putBackend(key, backend, request.body, identify(request));
      return reply.code(created ? 201 : 200).send(vip);
    },
  );

  app.patch(
    '/v1/vips/:protocol/:address/:port/backends/:backend',
    {
      config: limited,
      schema: {
        operationId: 'patchBackend',
        tags: ['vips'],
        summary: 'Change only the given settings of a backend',
        description: 'Answers the whole VIP. The fields left out keep their value; 404 when the backend does not exist.',
        params: backendParamsSchema,
        body: backendPatchBodySchema,
        response: { 200: documented(vipViewSchema, 'Changed; the VIP with its backends', vipExample), ...existingChangeErrors },
      },
    },
    async (request) => {
      const { backend, ...key } = request.params;
      return controller.patchBackend(key, backend, request.body, identify(request));
    },
  );

  app.delete(
    '/v1/vips/:protocol/:address/:port/backends/:backend',
    {
      config: limited,
      schema: {
        operationId: 'deleteBackend',
        tags: ['vips'],
        summary: 'Remove a backend; its flows re-hash',
        params: backendParamsSchema,
        response: { 204: removed, ...existingChangeErrors },
      },
    },
    async (request, reply) => {
      const { backend, ...key } = request.params;
      await controller.deleteBackend(key, backend, identify(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/stats',
    {
      schema: {
        operationId: 'getStats',
        tags: ['status'],
        summary: 'Packets, bytes and rates per VIP and backend',
        response: { 200: documented(statsSchema, 'Counters since the data plane was made, and rates', statsExample), ...readErrors },
      },
    },
    () => controller.ratedStats(),
  );
};
