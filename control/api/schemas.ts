/** API shapes beyond the desired-state schemas and the controller's views (controller/views.ts): path parameters, bodies and errors. */
import { z } from 'zod';
import { addressSchema, backendSpecSchema, portParamSchema, vipKeySchema, vipSpecSchema } from '../state/schema.js';

export const vipParamsSchema = vipKeySchema.extend({ port: portParamSchema });
export const backendParamsSchema = vipParamsSchema.extend({ backend: addressSchema });

/** Bodies: a VIP's settings are required, a backend's all have defaults. */
export const vipBodySchema = vipSpecSchema;
/** No body (or null) means all defaults. */
export const backendBodySchema = z.preprocess((body) => body ?? {}, backendSpecSchema);

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
