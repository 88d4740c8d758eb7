/**
 * The desired state's shapes, as zod schemas: the single source for API validation,
 * TypeScript types, the OpenAPI document and the state file.
 */
import { z } from 'zod';
import { formatAddress, parseAddress } from '../dataplane/address.js';

export const protocolSchema = z.enum(['tcp', 'udp']).describe('Transport protocol of the VIP');

/** An IPv4 or IPv6 address, normalised to its canonical text. */
export const addressSchema = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    try {
      const { family, bytes } = parseAddress(text);
      return formatAddress(family, bytes);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not an IPv4 or IPv6 address: ${JSON.stringify(text)}` });
      return z.NEVER;
    }
  })
  .describe('IPv4 or IPv6 address');

export const portSchema = z.coerce.number().int().min(0).max(65535).describe('Port; 0 on a VIP means any port');

export const healthCheckSchema = z
  .strictObject({
    type: z.enum(['tcp', 'http', 'none']).describe('tcp: connect; http: GET and expect a status; none: always healthy'),
    port: z.number().int().min(1).max(65535).optional().describe('Defaults to the VIP port'),
    path: z.string().startsWith('/').max(1024).optional().describe('HTTP path, default /'),
    expectStatus: z.number().int().min(100).max(599).optional().describe('HTTP status that means healthy, default 200'),
    intervalMs: z.number().int().min(100).max(3_600_000).optional().describe('Between checks, default 2000'),
    timeoutMs: z.number().int().min(50).max(60_000).optional().describe('Per check, default 1000'),
    rise: z.number().int().min(1).max(100).optional().describe('Successes to become healthy, default 2'),
    fall: z.number().int().min(1).max(100).optional().describe('Failures to become unhealthy, default 3'),
  })
  .describe('Backend health check');

export const vipSpecSchema = z
  .strictObject({
    forwarding: z.enum(['dsr', 'ipip']).describe('dsr: MAC rewrite; ipip: IPIP/IP6IP6/4in6 tunnel'),
    affinity: z.enum(['flow', 'source-ip']).default('flow').describe('Hash the 5-tuple or the client address only'),
    conntrack: z.boolean().default(true).describe('Keep flows on their backend in the connection table'),
    panicThreshold: z.number().min(0).max(1).default(0.5).describe('Below this healthy share, every non-drained backend serves'),
    healthCheck: healthCheckSchema.default({ type: 'none' }),
  })
  .describe('VIP settings');

export const backendSpecSchema = z
  .strictObject({
    weight: z.number().int().min(0).max(65535).default(1).describe('Relative share of new flows; 0 takes none'),
    state: z.enum(['active', 'drain']).default('active').describe('drain: no new flows, existing ones go on'),
  })
  .describe('Backend settings');

export type Protocol = z.infer<typeof protocolSchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type VipSpec = z.infer<typeof vipSpecSchema>;
export type BackendSpec = z.infer<typeof backendSpecSchema>;

export interface VipKey {
  protocol: Protocol;
  address: string;
  port: number;
}

export const vipKeySchema = z.strictObject({ protocol: protocolSchema, address: addressSchema, port: portSchema });

export const storedBackendSchema = backendSpecSchema.extend({ address: addressSchema, id: z.number().int().min(0) });
export const storedVipSchema = vipSpecSchema.extend({
  protocol: protocolSchema,
  address: addressSchema,
  port: portSchema,
  id: z.number().int().min(0),
  backends: z.array(storedBackendSchema),
});

/** The state file: desired VIPs and backends with the data-plane ids they hold. */
export const stateFileSchema = z.strictObject({
  version: z.literal(1),
  vips: z.array(storedVipSchema),
});

export type StoredBackend = z.infer<typeof storedBackendSchema>;
export type StoredVip = z.infer<typeof storedVipSchema>;
export type StateFile = z.infer<typeof stateFileSchema>;

export const vipKeyText = (key: VipKey) => `${key.protocol}/${key.address.includes(':') ? `[${key.address}]` : key.address}:${key.port}`;

export const familyOf = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);
