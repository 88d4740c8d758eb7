/**
 * Changes to the desired state, as pure functions: each returns a new state or
 * throws an XlbError, never half-applies. Data-plane ids are allocated here and kept
 * for the life of a VIP or backend, so restarts and ring changes never re-number.
 */
import { conflict, invalidFields, notFound } from './errors.js';
import { CHECK_PORT_FIELD, checkPortProblem, backendConflict, type Limits } from './invariants.js';
import type { BackendSpec, StateFile, StoredBackend, StoredVip, VipKey, VipSpec } from './schema.js';
import { vipKeyText } from './schema.js';

export type { Limits } from './invariants.js';

export const emptyState = (): StateFile => ({ version: 1, vips: [] });

const sameKey = (vip: VipKey, key: VipKey) => vip.protocol === key.protocol && vip.address === key.address && vip.port === key.port;

export function findVip(state: StateFile, key: VipKey): StoredVip | undefined {
  return state.vips.find((vip) => sameKey(vip, key));
}

function requireVip(state: StateFile, key: VipKey): StoredVip {
  const vip = findVip(state, key);
  if (!vip) throw notFound(`VIP ${vipKeyText(key)}`);
  return vip;
}

function lowestFreeId(used: Iterable<number>, limit: number, what: string): number {
  const taken = new Set(used);
  for (let id = 0; id < limit; id++) if (!taken.has(id)) return id;
  throw conflict(`no room for another ${what}: the data plane holds at most ${limit}`, { limit });
}

/** Refused as the API refuses a body field: the check port is the body's, the port 0 that needs it the path's. */
function checkHealthCheckPort(key: VipKey, spec: VipSpec): void {
  const problem = checkPortProblem(key, spec.healthCheck);
  if (problem) throw invalidFields('body', [{ path: `body.${CHECK_PORT_FIELD}`, message: problem }]);
}

/** Creates or replaces a VIP's settings; its backends stay. */
export function putVip(state: StateFile, key: VipKey, spec: VipSpec, limits: Limits): { state: StateFile; created: boolean } {
  checkHealthCheckPort(key, spec);
  const existing = findVip(state, key);
  if (existing) {
    const clashes = existing.backends
      .map((b) => backendConflict({ address: key.address, forwarding: spec.forwarding }, b.address))
      .filter(Boolean);
    if (clashes.length) throw conflict(`forwarding ${spec.forwarding} does not fit this VIP's backends`, { backends: clashes });
    const vips = state.vips.map((vip) => (vip === existing ? { ...existing, ...spec } : vip));
    return { state: { ...state, vips }, created: false };
  }
  const id = lowestFreeId(
    state.vips.map((v) => v.id),
    limits.maxVips,
    'VIP',
  );
  const vip: StoredVip = { ...key, ...spec, id, backends: [] };
  return { state: { ...state, vips: [...state.vips, vip] }, created: true };
}

export function deleteVip(state: StateFile, key: VipKey): StateFile {
  const vip = requireVip(state, key);
  return { ...state, vips: state.vips.filter((v) => v !== vip) };
}

export function putBackend(
  state: StateFile,
  key: VipKey,
  address: string,
  spec: BackendSpec,
  limits: Limits,
): { state: StateFile; created: boolean } {
  const vip = requireVip(state, key);
  const clash = backendConflict(vip, address);
  if (clash) throw conflict(clash);
  const existing = vip.backends.find((b) => b.address === address);
  let backends: StoredBackend[];
  if (existing) {
    backends = vip.backends.map((b) => (b === existing ? { ...b, ...spec } : b));
  } else {
    const used = state.vips.flatMap((v) => v.backends.map((b) => b.id));
    backends = [...vip.backends, { address, ...spec, id: lowestFreeId(used, limits.maxBackends, 'backend') }];
  }
  const vips = state.vips.map((v) => (v === vip ? { ...vip, backends } : v));
  return { state: { ...state, vips }, created: !existing };
}

export function deleteBackend(state: StateFile, key: VipKey, address: string): StateFile {
  const vip = requireVip(state, key);
  if (!vip.backends.some((b) => b.address === address)) throw notFound(`backend ${address} of VIP ${vipKeyText(key)}`);
  const vips = state.vips.map((v) => (v === vip ? { ...vip, backends: vip.backends.filter((b) => b.address !== address) } : v));
  return { ...state, vips };
}
