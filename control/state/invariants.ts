/**
 * The rules that hold across records of the desired state, beyond what the zod schemas
 * check record by record. The state file, etcd and the API's changes (desired.ts) use
 * the same per-record rules; validateState checks a whole state (at load) in one pass.
 */
import { forwardingMode } from '../forwarding/registry.js';
import { checkType } from '../checks/registry.js';
import { familyOf } from '../net/address.js';
import { type HealthCheck, type StateFile, type VipKey, vipKeyText, type VipSpec } from './schema.js';

export interface Limits {
  maxVips: number;
  maxBackends: number;
}

/** Why a backend at this address cannot serve this VIP (its own address, or a family the forwarding cannot reach), or null. */
export function backendConflict(vip: { address: string; forwarding: VipSpec['forwarding'] }, backendAddress: string): string | null {
  if (backendAddress === vip.address) return `backend ${backendAddress} is the VIP's own address: the balancer would forward to itself`;
  const vipFamily = familyOf(vip.address);
  const backendFamily = familyOf(backendAddress);
  return forwardingMode(vip.forwarding).familyConflict(vipFamily, backendFamily, backendAddress);
}

/** The check's field checkPortProblem names. */
export const CHECK_PORT_FIELD = 'healthCheck.port';

/** A VIP on any port (0) has no port to check by default: its check needs one (the rule for CHECK_PORT_FIELD). */
export function checkPortProblem(key: VipKey, check: HealthCheck): string | null {
  return key.port === 0 && checkType(check.type).probe !== null && check.port === undefined
    ? `required when the VIP takes any port (port 0): a ${check.type} check has no VIP port to default to`
    : null;
}

/** Ids must fit the data plane this daemon opened (a smaller --max-* than before is refused). */
const vipIdProblem = (id: number, limits: Limits) =>
  id >= limits.maxVips ? `id ${id} is beyond the ${limits.maxVips} VIPs this data plane holds (--max-vips)` : null;
const backendIdProblem = (id: number, limits: Limits) =>
  id >= limits.maxBackends ? `id ${id} is beyond the ${limits.maxBackends} backends this data plane holds (--max-backends)` : null;

export class StateInvalidError extends Error {}

/**
 * Every cross-record rule over a whole state: unique VIP ids and keys, unique backend
 * ids across VIPs, unique backend addresses within a VIP, backends that fit their VIP, check ports
 * and (when given) ids within the data plane's limits. Throws naming the first record
 * that breaks one, e.g. `vips[3] (tcp/198.19.0.1:80): ...`.
 */
export function validateState(state: StateFile, limits?: Limits): void {
  const vipIds = new Map<number, string>();
  const vipKeys = new Map<string, string>();
  const backendIds = new Map<number, string>();
  state.vips.forEach((vip, v) => {
    const vipName = `vips[${v}] (${vipKeyText(vip)})`;
    const fail = (name: string, rule: string): never => {
      throw new StateInvalidError(`${name}: ${rule}`);
    };
    const key = vipKeyText(vip);
    if (vipKeys.has(key)) fail(vipName, `the same protocol/address/port as ${vipKeys.get(key)}`);
    vipKeys.set(key, vipName);
    if (vipIds.has(vip.id)) fail(vipName, `id ${vip.id} is already held by ${vipIds.get(vip.id)}`);
    vipIds.set(vip.id, vipName);
    const portProblem = checkPortProblem(vip, vip.healthCheck);
    if (portProblem) fail(vipName, `${CHECK_PORT_FIELD}: ${portProblem}`);
    const idProblem = limits && vipIdProblem(vip.id, limits);
    if (idProblem) fail(vipName, idProblem);
    const addresses = new Map<string, string>();
    vip.backends.forEach((backend, b) => {
      const name = `vips[${v}].backends[${b}] (${backend.address})`;
      if (addresses.has(backend.address)) fail(name, `the same address as ${addresses.get(backend.address)}`);
      addresses.set(backend.address, name);
      if (backendIds.has(backend.id)) fail(name, `id ${backend.id} is already held by ${backendIds.get(backend.id)}`);
      backendIds.set(backend.id, name);
      const problem = backendConflict(vip, backend.address) ?? (limits && backendIdProblem(backend.id, limits));
      if (problem) fail(name, problem);
    });
  });
}

/** The host's own addresses (by interface), and the network and directed broadcast addresses of its connected IPv4 prefixes. */
export interface HostAddresses {
  own: ReadonlyMap<string, string>;
  prefixEnds: ReadonlyMap<string, { end: 'network' | 'broadcast'; prefix: string }>;
}

/** Why a VIP or backend cannot have this address on this host, or null. */
export function hostAddressProblem(address: string, role: 'VIP' | 'backend', host: HostAddresses): string | null {
  const prefixEnd = host.prefixEnds.get(address);
  if (prefixEnd)
    return `${address} is the ${prefixEnd.end} address of the connected prefix ${prefixEnd.prefix}: a ${role} must be a unicast address`;
  const iface = host.own.get(address);
  if (!iface) return null;
  return role === 'VIP'
    ? `${address} is an address of this host (${iface}): a VIP must be an address the host does not answer for itself`
    : `${address} is an address of this host (${iface}): the balancer cannot forward to itself`;
}

/** A record that the host's addresses rule out: the VIP, the backend (null for the VIP itself) and the rule. */
export interface HostConflict {
  vip: string;
  backend: string | null;
  problem: string;
}

/**
 * Every record of a state that the host rules refuse. The host changes under an accepted
 * state (an address added later), so these are reported, never a reason to refuse a state.
 */
export function hostConflicts(state: StateFile, host: HostAddresses): HostConflict[] {
  return state.vips.flatMap((vip) => {
    const conflicts: HostConflict[] = [];
    const vipProblem = hostAddressProblem(vip.address, 'VIP', host);
    if (vipProblem) conflicts.push({ vip: vipKeyText(vip), backend: null, problem: vipProblem });
    for (const backend of vip.backends) {
      const problem = hostAddressProblem(backend.address, 'backend', host);
      if (problem) conflicts.push({ vip: vipKeyText(vip), backend: backend.address, problem });
    }
    return conflicts;
  });
}
