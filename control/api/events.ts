/** GET /v1/events: a WebSocket of JSON events (config changes, health transitions, a stats tick each second). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
import type { XlbEvent } from '../controller/views.js';
import { eventsSchema } from './event-schema.js';
import { errorBody } from './schemas.js';

export const eventsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  // Browsers cannot set headers on a WebSocket: the token may come as ?access_token= (auth.ts).
  app.route({
    method: 'GET',
    url: '/v1/events',
    config: { queryToken: true },
    schema: eventsSchema,
    handler: async (_, reply) =>
      reply
        .code(426)
        .header('upgrade', 'websocket')
        .send(errorBody('upgrade_required', 'GET /v1/events is a WebSocket: send Upgrade: websocket')),
    wsHandler: (socket) => {
      const send = (event: XlbEvent) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
      };
      controller.on('event', send);
      socket.on('close', () => controller.off('event', send));
    },
  });
};
