/** A backend's health as its checks decide it: unknown until the first result. */
import { z } from 'zod';

export const healthSchema = z.enum(['up', 'down', 'unknown']);
export type Health = z.infer<typeof healthSchema>;
