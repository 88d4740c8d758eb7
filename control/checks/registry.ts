/**
 * Every health-check type by name. The VIP schema's check (one object per type, with
 * its options), the resolved checks with their defaults, the probes and the CLI's
 * --health-check and --hc-* flags read this table; a type is one entry file and one
 * line here.
 */
import { z } from 'zod';
import { type CheckSpec, type CheckType, type CheckVia, checkCommonShape, checkTimingShape } from './check-type.js';
import { httpCheck } from './http.js';
import { none } from './none.js';
import { tcp } from './tcp.js';
import { udp } from './udp.js';

/** Names a type's option cannot take: the discriminator, the probe's target and path, and the fields every check has. */
const RESERVED_OPTIONS = new Set(['type', 'address', 'backend', 'forwarding', 'localPort', ...Object.keys(checkCommonShape)]);

/**
 * Check types by name, added at start-up. The check schema is built from them at its
 * first use; a type added or removed after that is refused, not left out of it.
 */
class CheckTypes extends Map<string, CheckType> {
  private built = false;

  override set(name: string, type: CheckType): this {
    const taken = Object.keys(type.options).filter((option) => RESERVED_OPTIONS.has(option));
    if (taken.length)
      throw new Error(
        `health-check type ${JSON.stringify(name)}: ${taken.join(', ')} is a field of every check (or its target), not an option of one type`,
      );
    this.refuseChangeOf(name);
    return super.set(name, type);
  }

  override delete(name: string): boolean {
    this.refuseChangeOf(name);
    return super.delete(name);
  }

  /** The types the check schema is built from: no change after this. */
  forSchema(): CheckType[] {
    this.built = true;
    return [...this.values()];
  }

  private refuseChangeOf(name: string): void {
    if (this.built)
      throw new Error(
        `health-check type ${JSON.stringify(name)}: the check schema was built already; register every type before the first check is parsed`,
      );
  }
}

export const checkTypes = new CheckTypes();
for (const type of [tcp, httpCheck, udp, none]) checkTypes.set(type.name, type);

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

/** The path a check's probes take (a check stored without `via` predates it: direct), or null for a type that does not probe. */
export function checkVia(check: { type: string; via?: unknown }): CheckVia | null {
  if (!checkType(check.type).probe) return null;
  return check.via === 'vip' ? 'vip' : 'direct';
}

/**
 * A VIP's check for one backend with every default applied, or null for a type that
 * does not probe. A via-vip probe is sent to the VIP's address; its local port is the
 * caller's to give.
 */
export function resolveCheck(
  check: { type: string; port?: number | undefined; via?: unknown },
  backend: string,
  vip: { address: string; port: number; forwarding: string },
): CheckSpec | null {
  const type = checkType(check.type);
  const via = checkVia(check);
  if (!type.probe || !via) return null;
  let options = resolvedOptions.get(check);
  if (!options) {
    let schema = optionSchemas.get(type);
    if (!schema) optionSchemas.set(type, (schema = z.object({ ...checkTimingShape, ...type.options })));
    options = schema.parse(check) as ResolvedOptions;
    resolvedOptions.set(check, options);
  }
  const address = via === 'vip' ? vip.address : backend;
  return { type: type.name, address, port: check.port ?? vip.port, via, backend, forwarding: vip.forwarding, ...options };
}
