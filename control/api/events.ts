/**
 * GET /v1/events: a WebSocket of JSON events (config changes, health transitions,
 * link changes, start and shutdown, a stats tick each second). With `?since=ID` it
 * first replays the kept events after that id, led by a gap message when some are
 * no longer kept; without it, live events only.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Controller } from '../controller/controller.js';
import { QUERY_TOKEN } from './auth.js';
import { errorSchema } from './schemas.js';

export const eventsQuerySchema = z.object({
  since: z
    .string()
    .regex(/^(0|[1-9][0-9]{0,14})$/, 'an event id: decimal digits without sign or leading zeros')
    .optional()
    .describe('Replay the kept events with a higher id first (0: all kept); without it, live events only'),
  [QUERY_TOKEN]: z.string().optional().describe('The bearer token, for browsers (they cannot set headers on a WebSocket)'),
});

export const eventsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  app.get(
    '/v1/events',
    {
      websocket: true,
      config: { queryToken: true },
      schema: {
        summary: 'WebSocket: config, health, link, start, shutdown and stats events',
        querystring: eventsQuerySchema,
        response: { 400: errorSchema, 401: errorSchema },
      },
    },
    (socket, request) => {
      const send = (event: object) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
      };
      const since = request.query.since;
      // Replayed and subscribed in one turn of the event loop: no event falls between.
      if (since !== undefined) for (const event of controller.history.replay(Number(since))) send(event);
      controller.on('event', send);
      socket.on('close', () => controller.off('event', send));
    },
  );
};
