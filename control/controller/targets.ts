/** What the controller observes for a desired state: each backend's health check and next hop. */
import type { CheckSpec } from '../checks/check-type.js';
import type { Health } from '../checks/health.js';
import { resolveCheck } from '../checks/registry.js';
import { IPPROTO_TCP, IPPROTO_UDP, PROBE_PORT_MAX, PROBE_PORT_MIN } from '../dataplane/codec.js';
import type { DataplanePort } from '../dataplane/port.js';
import type { ProbeEntry } from '../dataplane/probes.js';
import { forwardingMode } from '../forwarding/registry.js';
import { familyOf, parseAddress } from '../net/address.js';
import { type BusyPorts, checkTransport, type Transport } from '../health/busy-ports.js';
import type { CheckResult, HealthMonitor, ProbeHold } from '../health/checker.js';
import { unforwardableReason, type VipPlan } from '../reconciler/plan.js';
import type { ProbeOrigin } from './options.js';
import type { HostAddresses } from '../state/invariants.js';
import { type StateFile, type StoredBackend, type StoredVip, type VipKey, vipKeyText } from '../state/schema.js';

/** A backend of a VIP as the health monitor knows it. */
export const healthKey = (vip: StoredVip, backend: StoredBackend) => `${vip.id}:${backend.id}`;

/** The VIP and backend ids a health key names. */
export function parseHealthKey(key: string): { vipId: number; backendId: number } {
  const [vipId, backendId] = key.split(':').map(Number) as [number, number];
  return { vipId, backendId };
}

/** A finished check of a backend, named by its VIP and address. */
export type BackendCheck = Omit<CheckResult, 'key'> & { vip: VipKey; backend: string };

/** The VIP and backend address a health key names in `state`, while both are there. */
export function checkedBackend(state: StateFile, key: string): { vip: VipKey; backend: string } | undefined {
  const { vipId, backendId } = parseHealthKey(key);
  const vip = state.vips.find((v) => v.id === vipId);
  const backend = vip?.backends.find((b) => b.id === backendId);
  return vip && backend ? { vip: { protocol: vip.protocol, address: vip.address, port: vip.port }, backend: backend.address } : undefined;
}

/** A via-vip target: its check and the backend record its probes go to. */
interface ViaVipTarget {
  key: string;
  spec: CheckSpec;
  backendId: number;
  forwarding: number;
}

/** A probe destination (the VIP address and check port) as text. */
const destinationOf = (address: Buffer, port: number) => `${address.toString('hex')} ${port}`;

/** The health monitor's targets by health key, the probe entries that send the via-vip ones, and the checks waiting for a port. */
export interface CheckTargets {
  specs: Map<string, CheckSpec>;
  probes: ProbeEntry[];
  /** Health key -> why its via-vip check has no port: every one it could take is held by another process. */
  waiting: Map<string, string>;
}

/** Ports found held by another process, per family and transport (health/busy-ports.ts). */
type HeldPorts = Pick<BusyPorts, 'has'>;

const PROBE_PORTS = PROBE_PORT_MAX - PROBE_PORT_MIN + 1;

/** The hold reason of a check left without a port because the `free` ports its destination's other checks leave are all held. */
const waitReason = (spec: CheckSpec, free: number) =>
  `waiting for a probe port: all ${free} free probe ports for ${spec.address} port ${spec.port} ` +
  `(${checkTransport(spec.type)}/IPv${familyOf(spec.address)}, ${PROBE_PORT_MIN}-${PROBE_PORT_MAX}) are held by other processes on the LB`;

/**
 * Every backend's check with its defaults applied, by health key (none for a check type
 * that does not probe). A via-vip check gets a local port: the one `held` (the probe
 * entries in place) gives its backend record, else the lowest free among the checks of
 * the same destination; a port `busy` holds for the check's family and transport
 * (another process has it) is neither kept nor given. A check left without a port
 * because of busy ones waits (`waiting`); a destination with more checks than ports
 * leaves the rest without one (their probes fail saying so). Each port has a TCP and a
 * UDP entry. With `origin`, a via-vip probe binds the LB's source of its family too.
 */
export function checkTargets(
  state: StateFile,
  held: readonly ProbeEntry[] = [],
  { busy = { has: () => false }, origin }: { busy?: HeldPorts; origin?: ProbeOrigin | undefined } = {},
): CheckTargets {
  const specs = new Map<string, CheckSpec>();
  const byDestination = new Map<string, ViaVipTarget[]>();
  for (const vip of state.vips) {
    for (const backend of vip.backends) {
      const spec = resolveCheck(vip.healthCheck, backend.address, vip);
      if (!spec) continue;
      const key = healthKey(vip, backend);
      specs.set(key, spec);
      if (spec.via !== 'vip') continue;
      if (origin) {
        spec.localAddress = familyOf(spec.address) === 4 ? origin.v4 : origin.v6;
        spec.probeInterface = origin.iface;
      }
      const destination = destinationOf(parseAddress(spec.address).bytes, spec.port);
      const list = byDestination.get(destination) ?? [];
      list.push({ key, spec, backendId: backend.id, forwarding: forwardingMode(vip.forwarding).code });
      byDestination.set(destination, list);
    }
  }
  const waiting = new Map<string, string>();
  const heldPorts = new Map(held.map((e) => [`${destinationOf(e.address, e.port)} ${e.backendId}`, e.localPort]));
  for (const [destination, list] of byDestination) {
    const used = new Set<number>();
    const isBusy = (spec: CheckSpec, port: number) => busy.has(familyOf(spec.address), checkTransport(spec.type), port);
    for (const target of list) {
      const port = heldPorts.get(`${destination} ${target.backendId}`);
      if (port === undefined || used.has(port) || isBusy(target.spec, port)) continue;
      target.spec.localPort = port;
      used.add(port);
    }
    // The lowest port not yet looked at, per transport: ports only get taken while giving them.
    const next = new Map<Transport, number>();
    const starved: ViaVipTarget[] = [];
    for (const target of list) {
      if (target.spec.localPort !== undefined || used.size === PROBE_PORTS) continue;
      const transport = checkTransport(target.spec.type);
      let port = next.get(transport) ?? PROBE_PORT_MIN;
      while (port <= PROBE_PORT_MAX && (used.has(port) || isBusy(target.spec, port))) port++;
      next.set(transport, port);
      if (port > PROBE_PORT_MAX) {
        starved.push(target);
        continue;
      }
      target.spec.localPort = port;
      used.add(port);
    }
    for (const { key, spec } of starved) waiting.set(key, waitReason(spec, PROBE_PORTS - used.size));
  }
  const probes = [...byDestination.values()].flat().flatMap(({ spec, backendId, forwarding }) => {
    const localPort = spec.localPort;
    if (localPort === undefined) return [];
    const { family, bytes } = parseAddress(spec.address);
    return [IPPROTO_TCP, IPPROTO_UDP].map((proto) => ({
      family,
      address: bytes,
      port: spec.port,
      proto,
      localPort,
      backendId,
      forwarding,
    }));
  });
  return { specs, probes, waiting };
}

/**
 * The health monitor's targets and the data plane's probe entries, set together: a
 * via-vip target's entry (which backend its probe port names) is written before its
 * first probe and removed with the target. A check whose port a probe found busy moves
 * to another here, and one left waiting for a port gets one here once a port is freed.
 * A probe's packet leaves on a later tick (a socket connects after the synchronous code
 * that asked), so the backend records the caller's reconcile writes next are in place
 * by then.
 */
export function syncChecks(
  options: { dp: DataplanePort; health: HealthMonitor; probeOrigin?: ProbeOrigin },
  state: StateFile,
  initial?: Health,
): void {
  const { busyPorts } = options.health;
  const { specs, probes, waiting } = checkTargets(state, options.dp.listProbes(), { busy: busyPorts, origin: options.probeOrigin });
  options.dp.setProbes(probes);
  busyPorts.setWaiting(waiting);
  options.health.sync(specs, initial);
}

/**
 * Why a via-vip probe cannot go out yet, by the plans applied: the probe program sends
 * it by the backend's record, and drops it while that record is not written or lacks
 * its next hop; and a VIP that is one of the host's own addresses (`host`) never leaves
 * it. A direct probe is the kernel's to route: never held.
 */
export function viaVipHolds(plans: () => ReadonlyMap<number, VipPlan>, host: () => HostAddresses | undefined = () => undefined): ProbeHold {
  return (key, spec) => {
    if (spec.via !== 'vip') return null;
    const { vipId, backendId } = parseHealthKey(key);
    const plan = plans().get(vipId);
    const backend = plan?.backends.find((b) => b.id === backendId);
    if (!plan || !backend) return 'waiting to probe: the backend is not in the data plane yet';
    // The kernel delivers a packet to its own address locally: any listener of the LB would answer.
    const own = host()?.own.get(plan.vip.address);
    if (own) return `cannot probe through the VIP: ${plan.vip.address} is an address of this host (${own}), so the probe never leaves it`;
    const reason = unforwardableReason(plan.vip.forwarding, backend.mac);
    return reason === null ? null : `waiting to probe through the VIP: ${reason}`;
  };
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
