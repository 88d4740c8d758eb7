/** What the controller observes for a desired state: each backend's health check and next hop. */
import type { CheckSpec } from '../checks/check-type.js';
import { resolveCheck } from '../checks/registry.js';
import type { CheckResult } from '../health/checker.js';
import { type StateFile, type StoredBackend, type StoredVip, type VipKey, vipKeyText } from '../state/schema.js';

/** A backend of a VIP as the health monitor knows it. */
export const healthKey = (vip: StoredVip, backend: StoredBackend) => `${vip.id}:${backend.id}`;

/** A finished check of a backend, named by its VIP and address. */
export type BackendCheck = Omit<CheckResult, 'key'> & { vip: VipKey; backend: string };

/** The VIP and backend address a health key names in `state`, while both are there. */
export function checkedBackend(state: StateFile, key: string): { vip: VipKey; backend: string } | undefined {
  const [vipId, backendId] = key.split(':').map(Number);
  const vip = state.vips.find((v) => v.id === vipId);
  const backend = vip?.backends.find((b) => b.id === backendId);
  return vip && backend ? { vip: { protocol: vip.protocol, address: vip.address, port: vip.port }, backend: backend.address } : undefined;
}

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
