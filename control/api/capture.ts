/**
 * GET /v1/capture streams a pcapng capture from the balancer (control/capture), one at
 * a time; DELETE /v1/capture ends it cleanly (statistics block written, stream ended).
 * A capture also ends when its count is reached, its client goes or the daemon stops.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ALL_OUTCOMES, captureQuerySchema, MAX_SNAPLEN } from '../capture/filter.js';
import { type CaptureNames, CaptureSession, type CaptureSwitch } from '../capture/session.js';
import type { Controller } from '../controller/controller.js';
import { parseAddress } from '../net/address.js';
import { conflict, notFound, XlbError } from '../state/errors.js';
import { type StateFile, type StoredVip, vipKeyText } from '../state/schema.js';
import { documented, errorBody, errorSchema, errorsOf } from './schemas.js';

export const PCAPNG_TYPE = 'application/vnd.tcpdump.pcapng';

/** What a capture needs of the daemon: the kernel switch and the interface's name for the file. */
export interface CaptureSource {
  tap: CaptureSwitch;
  interfaceName: string;
}

const runningExample = 'a capture is already running (vip=tcp/198.51.100.10:80 outcome=drop_*, since 2026-01-02T03:04:05.000Z)';

const captureSchema = {
  operationId: 'capturePackets',
  tags: ['monitoring'],
  summary: 'Capture packets as the balancer received and sent them (pcapng)',
  description:
    'Streams a pcapng file: every packet the balancer sees that matches the filter (in the kernel), as received and, when it ' +
    "is transmitted, as sent; each copy's comment names its direction, outcome, VIP and backend (`received tx_dsr " +
    'vip=tcp/198.51.100.10:80 backend=10.0.0.11 packet=0:17`, the CPU:sequence pairing the copies). The stream ends with an ' +
    'interface statistics block (isb_ifdrop: copies the kernel buffer lost; isb_osdrop: packets dropped because the client ' +
    'read too slowly) after `count` packets, on DELETE /v1/capture, when the client goes away or when the daemon stops. ' +
    'One capture at a time.',
  querystring: captureQuerySchema,
  response: {
    200: {
      description: 'The capture, as pcapng',
      content: { [PCAPNG_TYPE]: { schema: z.string().meta({ format: 'binary', example: '(pcapng blocks)' }) } },
    },
    ...errorsOf(400, 401, 404, 500),
    409: documented(errorSchema, 'Another capture is running (the message names it)', errorBody('conflict', runningExample)),
    503: documented(
      errorSchema,
      'This daemon has no kernel data plane to capture from',
      errorBody('dataplane_unavailable', 'capture needs the kernel data plane'),
    ),
  },
};

const stopSchema = {
  operationId: 'stopCapture',
  tags: ['monitoring'],
  summary: 'End the running capture',
  description: 'The capture writes its statistics block and its stream ends; the answer says what it captured.',
  response: {
    200: documented(
      z.object({ packets: z.number(), lostInKernel: z.number(), droppedByDaemon: z.number(), reason: z.string() }),
      'The capture ended',
      { packets: 120, lostInKernel: 0, droppedByDaemon: 0, reason: 'stopped by DELETE /v1/capture' },
    ),
    ...errorsOf(400, 401, 404, 413, 415, 429, 500),
  },
};

/** VIP and backend ids to their names, as the state holds them when the capture starts. */
function namesOf(state: StateFile): CaptureNames {
  const vips = new Map(state.vips.map((vip) => [vip.id, vipKeyText(vip)]));
  const backends = new Map(state.vips.flatMap((vip) => vip.backends.map((b) => [b.id, b.address] as const)));
  return { vip: (id) => vips.get(id), backend: (id) => backends.get(id) };
}

export const captureRoutes: FastifyPluginAsyncZod<{
  controller: Controller;
  source: CaptureSource | undefined;
  /** Changes each client may make per minute: a stop counts as one. */
  mutationsPerMinute: number;
}> = async (app, { controller, source, mutationsPerMinute }) => {
  let running: { session: CaptureSession; description: string } | null = null;
  // A lease left by a daemon that died mid-capture runs out by itself; cleared at once all the same.
  source?.tap.stop();
  app.addHook('preClose', async () => {
    running?.session.stop('daemon stopping');
  });

  app.get('/v1/capture', { schema: captureSchema }, async (request, reply) => {
    const query = request.query;
    const vip = query.vip && controller.storedVip(query.vip);
    if (query.vip && !vip) throw notFound(`VIP ${vipKeyText(query.vip)}`);
    // A filter on an address no VIP sends to would capture nothing, silently.
    const backendOf = (v: StoredVip) => v.backends.some((b) => b.address === query.backend);
    if (query.backend && !(vip ? [vip] : controller.snapshot().vips).some(backendOf))
      throw notFound(`backend ${query.backend} of ${vip ? `VIP ${vipKeyText(vip)}` : 'any VIP'}`);
    if (!source) throw new XlbError(503, 'dataplane_unavailable', 'capture needs the kernel data plane');
    if (running) throw conflict(`a capture is already running (${running.description})`);
    const backend = query.backend ? parseAddress(query.backend) : null;
    const session = new CaptureSession(source.tap, {
      settings: {
        vipId: vip ? vip.id : null,
        backend: backend && { family: backend.family, address: backend.bytes },
        outcomes: query.outcome ?? ALL_OUTCOMES,
        snaplen: query.snaplen ?? MAX_SNAPLEN,
      },
      count: query.count,
      interfaceName: source.interfaceName,
      names: namesOf(controller.snapshot()),
    });
    const filter = [...new URL(request.url, 'http://xlb').searchParams].map(([k, v]) => `${k}=${v}`).join(' ') || 'everything';
    const current = (running = { session, description: `${filter}, since ${session.started.toISOString()}` });
    const release = () => {
      if (running === current) running = null;
    };
    session.output.once('end', release);
    // The client gone (or the response done): the kernel stops copying.
    reply.raw.once('close', () => {
      release();
      session.stop('client gone');
    });
    // fastify streams a Readable as it is; the schema's string documents the bytes.
    return reply.header('content-type', PCAPNG_TYPE).send(session.output as unknown as string);
  });

  app.delete('/v1/capture', { schema: stopSchema, config: { rateLimit: { max: mutationsPerMinute, timeWindow: 60_000 } } }, async () => {
    if (!running) throw new XlbError(404, 'not_found', 'no capture is running');
    return running.session.stop('stopped by DELETE /v1/capture');
  });
};
