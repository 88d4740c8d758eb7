/** What the controller observes for a desired state: each backend's health check and next hop. */
import type { CheckSpec } from '../checks/check-type.js';
import { resolveCheck } from '../checks/registry.js';
import { type StateFile, type StoredBackend, type StoredVip, vipKeyText } from '../state/schema.js';

/** A backend of a VIP as the health monitor knows it. */
export const healthKey = (vip: StoredVip, backend: StoredBackend) => `${vip.id}:${backend.id}`;

/** Every backend's check with its defaults applied, by health key; none for a check type that does not probe. */
export function checkTargets(state: StateFile): Map<string, CheckSpec> {
  const targets = new Map<string, CheckSpec>();
  for (const vip of state.vips) {
    for (const backend of vip.backends) {
      const spec = resolveCheck(vip.healthCheck, backend.address, vip.port);
      if (spec) targets.set(healthKey(vip, backend), spec);
    }
  }
  return targets;
}

/** Every backend address, once. */
export function backendAddresses(state: StateFile): string[] {
  return [...new Set(state.vips.flatMap((v) => v.backends.map((b) => b.address)))];
}

/** The ids of the VIPs with a backend at one of `addresses`. */
export function vipsWithBackendAt(state: StateFile, addresses: ReadonlySet<string>): Set<number> {
  return new Set(state.vips.filter((v) => v.backends.some((b) => addresses.has(b.address))).map((v) => v.id));
}

/** The VIPs with these ids, as text for logs. */
export function vipTexts(state: StateFile, ids: ReadonlySet<number>): string[] {
  return state.vips.filter((v) => ids.has(v.id)).map(vipKeyText);
}
