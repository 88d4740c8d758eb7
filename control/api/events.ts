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

/** A client this far behind (bytes queued for it) is cut off: a reader that stops must not grow the daemon. */
export const MAX_QUEUED_BYTES = 1024 * 1024;
/** Event clients at once; more are refused (1013, try again later). */
export const MAX_EVENT_CLIENTS = 64;
/** The largest message a client may send; the stream takes none, so any closes it (1008). */
export const MAX_CLIENT_MESSAGE = 1024;

export const eventsRoute: FastifyPluginAsyncZod<{ controller: Controller }> = async (app, { controller }) => {
  let clients = 0;
  // Each event as JSON once, whatever the number of clients.
  const serialized = new WeakMap<object, string>();
  const json = (event: object) => {
    let text = serialized.get(event);
    if (text === undefined) serialized.set(event, (text = JSON.stringify(event)));
    return text;
  };
  controller.setMaxListeners(controller.getMaxListeners() + MAX_EVENT_CLIENTS);
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
      if (clients >= MAX_EVENT_CLIENTS) return socket.close(1013, `more than ${MAX_EVENT_CLIENTS} event clients`);
      clients++;
      // The replay (at most the kept events) may queue more; live events find the client keeping up or cut it off.
      const send = (event: object) => {
        if (socket.readyState !== socket.OPEN) return;
        const message = json(event);
        // Behind by more than the limit, or than two such messages when one alone is larger (a big stats tick).
        if (socket.bufferedAmount > Math.max(MAX_QUEUED_BYTES, 2 * message.length)) return socket.terminate();
        socket.send(message);
      };
      socket.on('message', () => socket.close(1008, 'this stream takes no messages'));
      socket.on('close', () => {
        clients--;
        controller.off('event', send);
      });
      const since = request.query.since;
      // Replayed and subscribed in one turn of the event loop: no event falls between.
      if (since !== undefined) for (const event of controller.history.replay(Number(since))) socket.send(json(event));
      controller.on('event', send);
    },
  });
};
