/** The XDP attach modes: in the driver, or the kernel's generic path that any interface has. */
import type { XdpMode as NativeXdpMode } from '@xlb/native';
import { z } from 'zod';

export const xdpModeSchema = z.enum(['native', 'generic'] as const satisfies readonly NativeXdpMode[]);
export type XdpMode = z.infer<typeof xdpModeSchema>;
