/** The messages of GET /v1/events as a schema, for the OpenAPI document. */
import { checkViaSchema } from '../checks/check-type.js';
import { z } from 'zod';
import { healthSchema } from '../checks/health.js';
import { type EventGap, statsSchema, type XlbEvent } from '../controller/views.js';
import { protocolSchema } from '../state/schema.js';
import { statsExample } from './examples.js';
import { QUERY_TOKEN } from './auth.js';
import { errorsOf } from './schemas.js';

const at = z.string().describe('When it happened (ISO 8601)');
const id = z.number().int().describe('Numbered from 1 at each daemon start; `?since=` takes it');
const vip = z.object({ protocol: protocolSchema, address: z.string(), port: z.number() });
const fields = z.record(z.string(), z.unknown()).nullable();

export const eventSchema = z.union([
  z.object({
    type: z.literal('config'),
    action: z.enum(['vip.put', 'vip.delete', 'backend.put', 'backend.patch', 'backend.delete']),
    vip,
    backend: z.string().exactOptional(),
    before: fields.describe('The fields that changed, before; null: the record did not exist'),
    after: fields.describe('The fields that changed, after; null: the record no longer exists'),
    by: z
      .object({
        peer: z.string().describe("The client's address, or unix"),
        token: z.string().nullable().describe("The token's fingerprint"),
      })
      .nullable()
      .describe('Who made the change; null: the daemon itself'),
    id,
    at,
  }),
  z
    .object({ type: z.literal('config'), action: z.literal('sync'), revision: z.string(), id, at })
    .describe('The desired state changed in the shared store (etcd)'),
  z.object({
    type: z.literal('health'),
    vip,
    backend: z.string(),
    via: checkViaSchema.describe('The path the check took'),
    from: healthSchema,
    to: healthSchema,
    reason: z.string().nullable(),
    latencyMs: z.number(),
    id,
    at,
  }),
  z.object({
    type: z.literal('link'),
    iface: z.string(),
    attached: z.boolean(),
    reason: z.string().nullable(),
    sources: z
      .object({ v4: z.string().nullable(), v6: z.string().nullable() })
      .optional()
      .describe("The balancer's source addresses, when one followed the interface to a new address (or to none)"),
    id,
    at,
  }),
  z
    .object({
      type: z.literal('start'),
      version: z.string(),
      iface: z.string(),
      store: z.string(),
      vips: z.number(),
      backends: z.number(),
      pins: z.object({ adopted: z.array(z.string()), created: z.array(z.string()) }),
      id,
      at,
    })
    .describe('What the daemon restored at start'),
  z.object({ type: z.literal('shutdown'), reason: z.string(), id, at }),
  z
    .object({
      type: z.literal('flood'),
      active: z.boolean().describe('true: a flood started; false: it ended'),
      threshold: z.number().describe('New flows per second over all CPUs that count as a flood'),
      newFlowsPerSecond: z
        .array(z.number())
        .describe('Each online CPU’s new flows per second in the window that started or ended it (for diagnosis)'),
      peakPerSecond: z.number().describe('The highest new-flow rate over all CPUs in the flood'),
      since: z.string().describe('When it began (ISO 8601): its first window over the threshold'),
      durationSeconds: z.number().describe('How long it lasted: to the calm that ended it (at the start: so far)'),
      newFlows: z.number().describe('New flows of the configured VIPs in it'),
      id,
      at,
    })
    .describe('New flows came at a flood rate over all CPUs (2 s over the threshold), or the flood ended (10 s under half of it)'),
  statsSchema.extend({ type: z.literal('stats') }).describe('Each second; not kept, not numbered'),
]);

/** The first message of a replay that misses events (see EventGap). */
export const gapSchema = z
  .object({ type: z.literal('gap'), since: z.number(), next: z.number(), reason: z.enum(['evicted', 'restarted']) })
  .describe("First message of a replay when events after `since` are no longer kept (evicted) or are an earlier daemon's (restarted)");

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only while the schema and XlbEvent describe the same events. */
export const eventSchemaMatchesXlbEvent: Same<z.output<typeof eventSchema>, XlbEvent> = true;
export const gapSchemaMatchesEventGap: Same<z.output<typeof gapSchema>, EventGap> = true;

export const eventExamples: (XlbEvent | EventGap)[] = [
  {
    type: 'health',
    vip: { protocol: 'tcp', address: '203.0.113.10', port: 80 },
    backend: '10.0.0.13',
    via: 'vip',
    from: 'up',
    to: 'down',
    reason: 'http status 503, expected 200 through dsr to 10.0.0.13',
    latencyMs: 3.4,
    id: 42,
    at: '2026-12-02T21:40:01.290Z',
  },
  {
    type: 'config',
    action: 'backend.put',
    vip: { protocol: 'tcp', address: '203.0.113.10', port: 80 },
    backend: '10.0.0.11',
    before: { weight: 1 },
    after: { weight: 3 },
    by: { peer: '192.0.2.7', token: '9f86d081884c' },
    id: 41,
    at: '2026-12-02T21:39:58.004Z',
  },
  { type: 'stats', ...statsExample },
  { type: 'link', iface: 'eth0', attached: true, reason: null, id: 2, at: '2026-12-02T21:30:00.512Z' },
  {
    type: 'flood',
    active: false,
    threshold: 125000,
    newFlowsPerSecond: [41022, 38310],
    peakPerSecond: 1811907,
    since: '2026-12-02T21:41:10.000Z',
    durationSeconds: 12,
    newFlows: 39561880,
    id: 43,
    at: '2026-12-02T21:41:32.000Z',
  },
  { type: 'gap', since: 3, next: 40, reason: 'evicted' },
];

// `example`, not `examples`: as for the path parameters (schemas.ts).
export const eventsQuerySchema = z.object({
  since: z
    .string()
    .regex(/^(0|[1-9][0-9]{0,14})$/, 'an event id: decimal digits without sign or leading zeros')
    .optional()
    .meta({ example: '41' })
    .describe('Replay the kept events with a higher id first (0: all kept); without it, live events only'),
  [QUERY_TOKEN]: z
    .string()
    .optional()
    .meta({ example: 'c2VjcmV0LXRva2Vu' })
    .describe('The bearer token, for browsers (they cannot set headers on a WebSocket)'),
});

/** GET /v1/events as the OpenAPI document shows it. */
export const eventsSchema = {
  operationId: 'streamEvents',
  tags: ['monitoring'],
  summary: 'WebSocket: config, health, link, start, shutdown, flood and stats events',
  description:
    'Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`); each message the server sends is one event, ' +
    'a JSON object of the 101 schema. Browsers, which cannot set headers on a WebSocket, may send the token as `?access_token=`.',
  querystring: eventsQuerySchema,
  response: {
    101: z.union([eventSchema, gapSchema]).meta({ description: 'Switching Protocols: each message is one event', examples: eventExamples }),
    ...errorsOf(400, 401, 426, 500),
  },
};
