/**
 * Every forwarding mode by name. The VIP schema's enum, the plan, the family rules
 * and the CLI help read this table; a mode is one entry file and one line here.
 */
import { dsr } from './dsr.js';
import { ipip } from './ipip.js';
import type { ForwardingMode } from './mode.js';

export const forwardingModes = new Map<string, ForwardingMode>([dsr, ipip].map((mode) => [mode.name, mode]));

/** The mode of a VIP whose forwarding the schema accepted. */
export function forwardingMode(name: string): ForwardingMode {
  const mode = forwardingModes.get(name);
  if (!mode) throw new Error(`unknown forwarding mode ${JSON.stringify(name)}`);
  return mode;
}
