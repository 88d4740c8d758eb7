/**
 * The desired state's shapes, as zod schemas: the single source for API validation,
 * TypeScript types, the OpenAPI document and the state file.
 */
import { z } from 'zod';
import { canonicalAddress } from '../net/address.js';
import { addressRefusal } from '../net/address-policy.js';
import { forwardingModes } from '../forwarding/registry.js';
import { type CheckType, type CheckVia, checkCommonShape, checkViaSchema } from '../checks/check-type.js';
import { checkTypes } from '../checks/registry.js';

export const protocolSchema = z.enum(['tcp', 'udp']).describe('Transport protocol of the VIP');

/** A unicast IPv4 or IPv6 address (see net/address-policy.ts), normalised to its canonical text. */
export const addressSchema = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    let address: string;
    try {
      address = canonicalAddress(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not an IPv4 or IPv6 address: ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    const refusal = addressRefusal(text);
    if (refusal) {
      ctx.addIssue({ code: 'custom', message: refusal });
      return z.NEVER;
    }
    return address;
  })
  .describe('Unicast IPv4 or IPv6 address: not unspecified, loopback, link-local, multicast, broadcast, reserved or IPv4-mapped');

const portSchema = z.number().int().min(0).max(65535).describe('Port; 0 on a VIP means any port');

/** A port as a URL path segment: decimal digits, no sign, no leading zeros. */
export const portParamSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,4})$/, 'a port is decimal digits without sign or leading zeros')
  .transform(Number)
  .pipe(portSchema)
  .describe('Port, 0..65535 in decimal; 0 on a VIP means any port');

/** The descriptions of a registry's entries, for an enum's description. */
const described = (entries: Iterable<{ name: string; description: string }>) =>
  [...entries].map((e) => `${e.name}: ${e.description}`).join('; ');

/** An enum of a registry's names. */
const namesOf = (registry: Map<string, unknown>) => z.enum([...registry.keys()] as [string, ...string[]]);

/**
 * A check option as the state holds it: as given, optional; resolveCheck applies its
 * default when the check runs, and the description names it.
 */
function storedOption(option: z.ZodType): z.ZodType {
  if (option instanceof z.ZodOptional) return option;
  if (!(option instanceof z.ZodDefault)) return option.optional();
  const description = [option.description, `default ${JSON.stringify(option.def.defaultValue)}`].filter(Boolean).join('; ');
  return (option.unwrap() as z.ZodType).optional().describe(description);
}

const storedShape = (shape: z.ZodRawShape) =>
  Object.fromEntries(Object.entries(shape).map(([name, option]) => [name, storedOption(option as z.ZodType)]));

const storedCommonShape = storedShape(checkCommonShape);

/** A stored check: the common fields typed, its type's own options beside them. */
export type HealthCheck = { type: string } & { [field in Exclude<keyof typeof checkCommonShape, 'via'>]?: number | undefined } & {
  via?: CheckVia | undefined;
} & {
  [option: string]: unknown;
};

/** The path of a type that sends no probe: there is none to choose, so a `via` is refused naming it. */
const noPath = (type: CheckType) =>
  z
    .never({ error: `a ${type.name} check sends no probe, so it has no path to choose` })
    .optional()
    .describe(`Not taken: a ${type.name} check sends no probe`);

/**
 * One type's check: the common fields and that type's options, nothing else. A probing
 * check's `via`, when not given, is `via`: the API's checks go through the VIP, a
 * stored check from before `via` existed keeps what its probes did (direct).
 */
function typeCheckSchema(type: CheckType, via: CheckVia) {
  const path: z.ZodRawShape = { via: type.probe ? checkViaSchema.default(via) : noPath(type) };
  const fields = ['type', ...Object.keys(storedCommonShape).filter((field) => type.probe || field !== 'via'), ...Object.keys(type.options)];
  return z.strictObject(
    { type: z.literal(type.name).describe(type.description), ...storedCommonShape, ...path, ...storedShape(type.options) },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `${issue.keys.map((key) => JSON.stringify(key)).join(', ')}: not an option of a ${type.name} check, which takes ${fields.join(', ')}`
          : undefined,
    },
  );
}

/** A type's check schema that also applies the type's rule across its options. */
const withOptionsRule = (type: CheckType, schema: ReturnType<typeof typeCheckSchema>) =>
  schema.superRefine((check, ctx) => {
    const problem = type.optionsProblem?.(check);
    if (problem) ctx.addIssue({ code: 'custom', path: [problem.option], message: problem.message });
  });

/** The check schema of every registered type, built at its first use: a type registered after import is in it. */
function buildHealthCheckSchema(via: CheckVia): z.ZodType<HealthCheck, HealthCheck> {
  const [first, ...rest] = checkTypes.forSchema().map((type) => withOptionsRule(type, typeCheckSchema(type, via)));
  if (!first) throw new Error('no health-check type is registered');
  return z.discriminatedUnion('type', [first, ...rest]);
}

export const healthCheckSchema = z
  .lazy(() => buildHealthCheckSchema('vip'))
  .describe('Backend health check: the common fields and the options of its type');

/** A check as the state file and etcd hold it. */
const storedCheckSchema = z.lazy(() => buildHealthCheckSchema('direct'));

export const vipSpecSchema = z
  .strictObject({
    forwarding: namesOf(forwardingModes).describe(described(forwardingModes.values())),
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
export type VipSpec = z.infer<typeof vipSpecSchema>;
export type BackendSpec = z.infer<typeof backendSpecSchema>;

/** What names a VIP: the API's path parameters and the stored VIP's key fields. */
export const vipKeySchema = z.strictObject({ protocol: protocolSchema, address: addressSchema, port: portSchema });
export type VipKey = z.infer<typeof vipKeySchema>;

const storedBackendSchema = backendSpecSchema.extend({ address: addressSchema, id: z.number().int().min(0) });
export const storedVipSchema = vipSpecSchema.extend({
  healthCheck: storedCheckSchema.default({ type: 'none' }),
  ...vipKeySchema.shape,
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

export const vipKeyText = (key: Omit<VipKey, 'protocol'> & { protocol: string }) =>
  `${key.protocol}/${key.address.includes(':') ? `[${key.address}]` : key.address}:${key.port}`;
