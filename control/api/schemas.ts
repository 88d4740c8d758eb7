/** API shapes beyond the desired-state schemas and the controller's views (controller/views.ts): path parameters, bodies and errors. */
import { z } from 'zod';
import { addressSchema, backendSpecSchema, portParamSchema, protocolSchema, vipSpecSchema } from '../state/schema.js';

export const vipParamsSchema = z.strictObject({ protocol: protocolSchema, address: addressSchema, port: portParamSchema });
export const backendParamsSchema = vipParamsSchema.extend({ backend: addressSchema });

/** Bodies: a VIP's settings are required, a backend's all have defaults. */
export const vipBodySchema = vipSpecSchema;
/** No body (or null) means all defaults. */
export const backendBodySchema = z.preprocess((body) => body ?? {}, backendSpecSchema);

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
