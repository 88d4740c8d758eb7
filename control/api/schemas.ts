/** API shapes beyond the desired-state schemas: path parameters and responses. */
import { z } from 'zod';
import { addressSchema, backendSpecSchema, healthCheckSchema, portParamSchema, protocolSchema, vipSpecSchema } from '../state/schema.js';

export const vipParamsSchema = z.strictObject({ protocol: protocolSchema, address: addressSchema, port: portParamSchema });
export const backendParamsSchema = vipParamsSchema.extend({ backend: addressSchema });

/** Bodies: a VIP's settings are required, a backend's all have defaults. */
export const vipBodySchema = vipSpecSchema;
/** No body (or null) means all defaults. */
export const backendBodySchema = z.preprocess((body) => body ?? {}, backendSpecSchema);

const healthSchema = z.enum(['up', 'down', 'unknown']);

export const backendViewSchema = z.object({
  address: z.string(),
  weight: z.number(),
  state: z.enum(['active', 'drain']),
  health: healthSchema,
  healthReason: z.string().nullable().describe('Why the last check failed'),
  inRing: z.boolean().describe('Takes new flows now: holds at least one slot of the ring'),
  slots: z.number().int().describe('Slots of the Maglev ring it holds (of M)'),
  reason: z.string().nullable().describe('Why it is not in the ring'),
  mac: z.string().nullable().describe('Resolved next-hop MAC'),
});

export const vipViewSchema = z.object({
  protocol: protocolSchema,
  address: z.string(),
  port: z.number(),
  forwarding: vipSpecSchema.shape.forwarding,
  affinity: z.enum(['flow', 'source-ip']),
  conntrack: z.boolean(),
  panicThreshold: z.number(),
  healthCheck: healthCheckSchema,
  panic: z.boolean().describe('Healthy share under panicThreshold: every non-drained backend serves'),
  ringBackends: z.number(),
  backends: z.array(backendViewSchema),
});

export const vipListSchema = z.object({ vips: z.array(vipViewSchema) });

export const statusSchema = z.object({
  version: z.string(),
  interface: z.string(),
  xdpMode: z.enum(['native', 'generic']),
  uptimeSeconds: z.number(),
  attached: z.boolean().describe('The balancer is the XDP program on the interface'),
  attachReason: z.string().nullable().describe('Why it is not attached (interface gone, another program), or null'),
  ready: z.boolean().describe('Attached and the desired state applied: /readyz answers 200'),
  warnings: z.array(z.string()).describe('About the host, found at start (e.g. a veth peer without XDP)'),
  conflicts: z
    .array(z.object({ vip: z.string(), backend: z.string().nullable().describe('null: the VIP itself'), problem: z.string() }))
    .describe("Stored VIPs and backends the host's addresses now rule out (an address added to the host after they were accepted): applied as they are, new ones are 409"),
  errors: z
    .array(z.object({ component: z.string(), count: z.number(), lastMessage: z.string(), lastAt: z.string() }))
    .describe('Failures the daemon caught and went on from, by component'),
  counts: z.object({ vips: z.number(), backends: z.number(), backendsInRing: z.number(), backendsHealthy: z.number() }),
});

const trafficSchema = z.object({ packets: z.number(), bytes: z.number(), packetsPerSecond: z.number(), bytesPerSecond: z.number() });

export const statsSchema = z.object({
  at: z.string(),
  vips: z.array(
    trafficSchema.extend({
      protocol: protocolSchema,
      address: z.string(),
      port: z.number(),
      flowHits: z.number(),
      flowMisses: z.number(),
      backends: z.array(trafficSchema.extend({ address: z.string() })),
    }),
  ),
  outcomes: z.record(z.string(), z.object({ packets: z.number(), bytes: z.number() })),
});

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
