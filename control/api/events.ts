/** GET /v1/events: a WebSocket of JSON events (config changes, health transitions, a stats tick each second). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Controller, XlbEvent } from '../daemon/controller.js';
import { queryTokenConfig } from './auth.js';

export const eventsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  app.get('/v1/events', { websocket: true, config: queryTokenConfig, schema: { summary: 'WebSocket: config, health and stats events' } }, (socket) => {
    const send = (event: XlbEvent) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
    };
    controller.on('event', send);
    socket.on('close', () => controller.off('event', send));
  });
};
