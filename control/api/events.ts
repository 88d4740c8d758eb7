/** GET /v1/events: a WebSocket of JSON events (config changes, health transitions, a stats tick each second). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
import type { XlbEvent } from '../controller/views.js';

export const eventsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  // Browsers cannot set headers on a WebSocket: the token may come as ?access_token= (auth.ts).
  app.get(
    '/v1/events',
    { websocket: true, config: { queryToken: true }, schema: { summary: 'WebSocket: config, health and stats events' } },
    (socket) => {
      const send = (event: XlbEvent) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
      };
      controller.on('event', send);
      socket.on('close', () => controller.off('event', send));
    },
  );
};
