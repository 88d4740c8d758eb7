/** The messages of GET /v1/events as a schema, for the OpenAPI document. */
import { z } from 'zod';
import { healthSchema } from '../checks/health.js';
import { statsSchema, type XlbEvent } from '../controller/views.js';
import { protocolSchema } from '../state/schema.js';
import { statsExample } from './examples.js';
import { errorsOf } from './schemas.js';

const at = z.string().describe('When it happened (ISO 8601)');
const vip = z.object({ protocol: protocolSchema, address: z.string(), port: z.number() });

export const eventSchema = z.union([
  z.object({
    type: z.literal('config'),
    action: z.enum(['vip.put', 'vip.delete', 'backend.put', 'backend.delete']),
    vip,
    backend: z.string().exactOptional(),
    at,
  }),
  z
    .object({ type: z.literal('config'), action: z.literal('sync'), revision: z.string(), at })
    .describe('The desired state changed in the shared store (etcd)'),
  z.object({
    type: z.literal('health'),
    vip,
    backend: z.string(),
    from: healthSchema,
    to: healthSchema,
    reason: z.string().nullable(),
    latencyMs: z.number(),
    at,
  }),
  statsSchema.extend({ type: z.literal('stats') }).describe('Each second'),
  z.object({ type: z.literal('link'), attached: z.boolean(), reason: z.string().nullable(), at }),
]);

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only while the schema and XlbEvent describe the same events. */
export const eventSchemaMatchesXlbEvent: Same<z.output<typeof eventSchema>, XlbEvent> = true;

export const eventExamples: XlbEvent[] = [
  {
    type: 'health',
    vip: { protocol: 'tcp', address: '203.0.113.10', port: 80 },
    backend: '10.0.0.13',
    from: 'up',
    to: 'down',
    reason: 'HTTP 503 from /healthz',
    latencyMs: 3.4,
    at: '2026-12-02T21:40:01.290Z',
  },
  {
    type: 'config',
    action: 'backend.put',
    vip: { protocol: 'tcp', address: '203.0.113.10', port: 80 },
    backend: '10.0.0.11',
    at: '2026-12-02T21:39:58.004Z',
  },
  { type: 'stats', ...statsExample },
  { type: 'link', attached: true, reason: null, at: '2026-12-02T21:30:00.512Z' },
];

/** GET /v1/events as the OpenAPI document shows it. */
export const eventsSchema = {
  operationId: 'streamEvents',
  tags: ['monitoring'],
  summary: 'WebSocket: config, health, link and stats events',
  description:
    'Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`); each message the server sends is one event, ' +
    'a JSON object of the 101 schema. Browsers, which cannot set headers on a WebSocket, may send the token as `?access_token=`.',
  response: {
    101: eventSchema.meta({ description: 'Switching Protocols: each message is one event', examples: eventExamples }),
    ...errorsOf(401, 426, 500),
  },
};
