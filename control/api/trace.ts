/** GET and POST /v1/trace: where a flow or a frame goes, by the balancer's own code on the live maps. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { XlbError } from '../state/errors.js';
import { TraceBudget } from '../trace/budget.js';
import {
  flowSchema,
  MAX_FRAME_BYTES,
  MAX_TRACE_PACKETS,
  TRACE_BODY_LIMIT,
  traceBodySchema,
  traceSchema,
  type TraceView,
} from '../trace/schema.js';
import type { FlowTracer } from '../trace/tracer.js';
import { documented, errorBody, errorSchema, errorsOf } from './schemas.js';

const exampleBackend = {
  id: 3,
  address: '10.0.0.11',
  weight: 1,
  state: 'active',
  health: 'up',
  healthReason: null,
  inRing: true,
  slots: 21846,
} as const;

const traceExample: TraceView = {
  verdict: 'tx',
  outcome: 'tx_ipip',
  vip: { protocol: 'tcp', address: '198.51.100.10', port: 80, forwarding: 'ipip', conntrack: true },
  table: { result: 'miss', backend: null },
  ring: { hash: 2806294486, slot: 146, backend: exampleBackend },
  backend: exampleBackend,
  output: {
    frame: '02000000010102000000000208004500004200000000400400000a0000010a00000b45000028',
    ethernet: { destination: '02:00:00:00:01:01', source: '02:00:00:00:00:02' },
    outer: { source: '10.0.0.1', destination: '10.0.0.11', protocol: 4 },
  },
};

const unavailable = documented(
  errorSchema,
  'No kernel data plane to run the balancer on (dataplane_unavailable)',
  errorBody('dataplane_unavailable', 'trace needs the kernel data plane (this daemon runs without one)'),
);
const tooManyPackets = documented(
  errorSchema,
  'More requests a minute than the request limit, or more traced packets than the packet limit (Retry-After says when)',
  errorBody('rate_limited', 'more than 10000 traced packets a minute (9500 traced, this request has 1000); try again in 42 s'),
);
const traceErrors = { ...errorsOf(400, 401, 500), 429: tooManyPackets, 503: unavailable };

export const traceRoutes: FastifyPluginAsyncZod<{ tracer: FlowTracer; perMinute: number }> = async (app, { tracer, perMinute }) => {
  const limited = { rateLimit: { max: perMinute, timeWindow: 60_000 } };
  const budget = new TraceBudget();
  /** Counts the packets against the client's minute (keyed as the rate limit keys it), or refuses the request: 429. */
  const spend = (request: FastifyRequest, reply: FastifyReply, packets: number) => {
    const refusal = budget.take(request.ip ?? 'local', packets);
    if (!refusal) return;
    reply.header('retry-after', String(refusal.retryAfterSeconds));
    throw new XlbError(
      429,
      'rate_limited',
      `more than ${refusal.perMinute} traced packets a minute (${refusal.traced} traced, this request has ${packets}); ` +
        `try again in ${refusal.retryAfterSeconds} s`,
    );
  };
  const description =
    'Runs the balancer program itself (a dry-run load on the live maps) on the packet: the maps and counters stay as they are. ' +
    `Each packet counts against the client's ${budget.perMinute} traced packets a minute (429 past them, with Retry-After), ` +
    'and each request against the per-client request limit. 503 without a kernel data plane.';
  app.get(
    '/v1/trace',
    {
      config: limited,
      schema: {
        operationId: 'traceFlow',
        tags: ['trace'],
        summary: "Where a flow's packets go, and why",
        description: `${description} A tcp flow is traced as a SYN: the balancer reads no TCP flags.`,
        querystring: flowSchema,
        response: {
          200: documented(traceSchema, 'The VIP, table, ring and backend decisions, the outcome and the output', traceExample),
          ...traceErrors,
        },
      },
    },
    async (request, reply) => {
      spend(request, reply, 1);
      return tracer.trace([request.query])[0]!;
    },
  );
  app.post(
    '/v1/trace',
    {
      config: limited,
      bodyLimit: TRACE_BODY_LIMIT,
      schema: {
        operationId: 'tracePackets',
        tags: ['trace'],
        summary: 'Trace flows or raw frames (fragments, malformed packets, anything)',
        description:
          `${description} Up to ${MAX_TRACE_PACKETS} packets a request; the body may take ${TRACE_BODY_LIMIT} bytes, ` +
          `room for ${MAX_TRACE_PACKETS} frames of the largest size (${MAX_FRAME_BYTES} bytes) in hex (413 past it).`,
        body: traceBodySchema.meta({
          example: {
            packets: [
              { protocol: 'udp', source: '[2001:db8::7]:41000', destination: '[2001:db8::10]:53' },
              { frame: '0200000000020200000000010806' },
            ],
          },
        }),
        response: {
          200: documented(z.object({ traces: z.array(traceSchema) }), 'One trace per packet, in order', { traces: [traceExample] }),
          ...errorsOf(400, 401, 415, 500),
          413: documented(
            errorSchema,
            `The body is over ${TRACE_BODY_LIMIT} bytes`,
            errorBody('fst_err_ctp_body_too_large', 'Request body is too large'),
          ),
          429: tooManyPackets,
          503: unavailable,
        },
      },
    },
    async (request, reply) => {
      spend(request, reply, request.body.packets.length);
      return { traces: tracer.trace(request.body.packets) };
    },
  );
};
