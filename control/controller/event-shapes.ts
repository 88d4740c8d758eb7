/** Events made from what changed: a configuration change (the fields that differ, before and after), a health transition. */
import { isDeepStrictEqual } from 'node:util';
import { findVip } from '../state/desired.js';
import type { HealthChange } from '../health/checker.js';
import type { StateFile, StoredBackend, StoredVip } from '../state/schema.js';
import type { ConfigChange, ConfigFields, NewEvent } from './views.js';

/** The VIP's settings (its backends by address) or the backend's, as `state` holds them; null if it holds none. */
function fieldsOf(state: StateFile, change: ConfigChange): ConfigFields | null {
  const vip = findVip(state, change.vip);
  if (!vip) return null;
  if (change.backend === undefined) {
    const { forwarding, affinity, conntrack, panicThreshold, healthCheck, backends } = vip;
    return { forwarding, affinity, conntrack, panicThreshold, healthCheck, backends: backends.map((b) => b.address) };
  }
  const backend = vip.backends.find((b) => b.address === change.backend);
  return backend ? { weight: backend.weight, state: backend.state } : null;
}

/** Only the fields that differ; a record made or removed shows whole on its side, null on the other. */
function difference(before: ConfigFields | null, after: ConfigFields | null): { before: ConfigFields | null; after: ConfigFields | null } {
  if (!before || !after) return { before, after };
  const changed = Object.keys(after).filter((field) => !isDeepStrictEqual(before[field], after[field]));
  return {
    before: Object.fromEntries(changed.map((field) => [field, before[field]])),
    after: Object.fromEntries(changed.map((field) => [field, after[field]])),
  };
}

export function configEvent(previous: StateFile, next: StateFile, change: ConfigChange): NewEvent {
  return { type: 'config', ...change, ...difference(fieldsOf(previous, change), fieldsOf(next, change)) };
}

export function healthEvent(vip: StoredVip, backend: StoredBackend, change: HealthChange): NewEvent {
  const { via, from, to, reason, latencyMs } = change;
  return {
    type: 'health',
    vip: { protocol: vip.protocol, address: vip.address, port: vip.port },
    backend: backend.address,
    via,
    from,
    to,
    reason,
    latencyMs,
  };
}
