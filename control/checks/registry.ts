/**
 * Every health-check type by name. The VIP schema's check (type enum and options),
 * the resolved checks with their defaults, the probes and the CLI help read this
 * table; a type is one entry file and one line here.
 */
import { z } from 'zod';
import { type CheckSpec, type CheckType, checkTimingShape } from './check-type.js';
import { httpCheck } from './http.js';
import { none } from './none.js';
import { tcp } from './tcp.js';

export const checkTypes = new Map<string, CheckType>([tcp, httpCheck, none].map((type) => [type.name, type]));

/** The type of a check the schema accepted. */
export function checkType(name: string): CheckType {
  const type = checkTypes.get(name);
  if (!type) throw new Error(`unknown health-check type ${JSON.stringify(name)}`);
  return type;
}

type ResolvedOptions = Pick<CheckSpec, 'intervalMs' | 'timeoutMs' | 'rise' | 'fall'> & Record<string, unknown>;

/** Each type's options with their defaults, built once per type. */
const optionSchemas = new Map<CheckType, z.ZodObject>();
/** A stored check's options with defaults applied: the state's objects are immutable, and every change resolves every backend's check. */
const resolvedOptions = new WeakMap<object, ResolvedOptions>();

/** A VIP's check for one backend with every default applied, or null for a type that does not probe. */
export function resolveCheck(check: { type: string; port?: number | undefined }, address: string, vipPort: number): CheckSpec | null {
  const type = checkType(check.type);
  if (!type.probe) return null;
  let options = resolvedOptions.get(check);
  if (!options) {
    let schema = optionSchemas.get(type);
    if (!schema) optionSchemas.set(type, (schema = z.object({ ...checkTimingShape, ...type.options })));
    options = schema.parse(check) as ResolvedOptions;
    resolvedOptions.set(check, options);
  }
  return { type: type.name, address, port: check.port ?? vipPort, ...options };
}
