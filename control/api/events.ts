/**
 * GET /v1/events: a WebSocket of JSON events (config changes, health transitions,
 * link changes, start and shutdown, a stats tick each second). With `?since=ID` it
 * first replays the kept events after that id, led by a gap message when some are
 * no longer kept; without it, live events only.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
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
    wsHandler: (socket, request) => {
      const send = (event: object) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
      };
      const since = request.query.since;
      // Replayed and subscribed in one turn of the event loop: no event falls between.
      if (since !== undefined) for (const event of controller.history.replay(Number(since))) send(event);
      controller.on('event', send);
      socket.on('close', () => controller.off('event', send));
    },
  });
};
