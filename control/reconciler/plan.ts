/**
 * From desired state, health and neighbour resolution to what the data plane should
 * hold for one VIP: its record, each backend's record, and which backends make up
 * its ring. Pure: no I/O.
 */
import type { Health } from '../checks/health.js';
import { checkType } from '../checks/registry.js';
import { BACKEND_F_UNHEALTHY, protocolNumber, VIP_F_NO_CONNTRACK, VIP_F_SOURCE_AFFINITY } from '../dataplane/codec.js';
import { forwardingMode } from '../forwarding/registry.js';
import { familyOf } from '../net/address.js';
import type { StoredBackend, StoredVip } from '../state/schema.js';

export interface Observations {
  /** Health of a backend of a VIP; 'up' for VIPs without checks. */
  health(vip: StoredVip, backend: StoredBackend): Health;
  /** The backend's MAC if it is on our L2 segment and resolved, else null. */
  mac(address: string): Buffer | null;
}

export interface BackendPlan {
  id: number;
  address: string;
  family: 4 | 6;
  weight: number;
  /** 6 bytes; zero for an ipip backend reached through the gateway. */
  mac: Buffer;
  flags: number;
  /** Chosen for the ring; after withSlots, holding at least one of its slots. */
  inRing: boolean;
  /** Slots of the ring built from the plan (withSlots); 0 before. */
  slots: number;
  health: Health;
  /** Why the backend is not in the ring, when it is not. */
  reason: string | null;
}

export interface VipPlan {
  vip: StoredVip;
  proto: number;
  flags: number;
  forwarding: number;
  panic: boolean;
  backends: BackendPlan[];
  /** Ring members (in the ring order Maglev takes them), empty for no ring. */
  ringMembers: BackendPlan[];
}

const ZERO_MAC = Buffer.alloc(6);

/**
 * Why the data plane cannot forward to a backend with this MAC yet (the VIP's
 * forwarding mode needs one it does not have), or null.
 */
export function unforwardableReason(forwarding: StoredVip['forwarding'], mac: Buffer): string | null {
  const { unresolvedMacReason } = forwardingMode(forwarding);
  return unresolvedMacReason !== null && mac.equals(ZERO_MAC) ? unresolvedMacReason : null;
}

export function planVip(vip: StoredVip, seen: Observations): VipPlan {
  const mode = forwardingMode(vip.forwarding);
  const unforwardable = (p: BackendPlan) => unforwardableReason(vip.forwarding, p.mac);
  const probes = checkType(vip.healthCheck.type).probe !== null;
  const candidates = vip.backends.filter((b) => b.state === 'active' && b.weight > 0);
  const plans = vip.backends.map((b): BackendPlan => {
    const mac = seen.mac(b.address);
    return {
      id: b.id,
      address: b.address,
      family: familyOf(b.address),
      weight: b.weight,
      mac: mac ?? ZERO_MAC,
      flags: 0,
      inRing: false,
      slots: 0,
      health: probes ? seen.health(vip, b) : 'up',
      reason: null,
    };
  });
  const byId = new Map(plans.map((p) => [p.id, p]));
  const usable = candidates.map((b) => byId.get(b.id)!).filter((p) => unforwardable(p) === null);
  const healthy = usable.filter((p) => p.health === 'up');
  const panic = candidates.length > 0 && healthy.length / candidates.length < vip.panicThreshold;
  const members = panic ? usable : healthy;
  for (const p of members) p.inRing = true;

  for (const p of plans) {
    const spec = vip.backends.find((b) => b.id === p.id)!;
    if (p.health === 'down' && !panic) p.flags |= BACKEND_F_UNHEALTHY;
    if (p.inRing) continue;
    if (spec.state === 'drain') p.reason = 'draining';
    else if (spec.weight === 0) p.reason = 'weight 0';
    else if (unforwardable(p) !== null) p.reason = unforwardable(p);
    else if (p.health === 'down') p.reason = 'health check failing';
    else p.reason = 'health not yet known';
  }

  return {
    vip,
    proto: protocolNumber(vip.protocol),
    flags: (vip.affinity === 'source-ip' ? VIP_F_SOURCE_AFFINITY : 0) | (vip.conntrack ? 0 : VIP_F_NO_CONNTRACK),
    forwarding: mode.code,
    panic,
    backends: plans,
    ringMembers: members,
  };
}

/**
 * The plan as the ring built from it stands: each backend's slots, and a member
 * Maglev gave no slot out of the ring (slots go by weight, so a weight far under
 * the others' can come to less than one of the M). The ring members stay those
 * Maglev was given.
 */
export function withSlots(plan: VipPlan, slots: ReadonlyMap<number, number>, ringSize: number): VipPlan {
  const backends = plan.backends.map((b): BackendPlan => {
    const held = slots.get(b.id) ?? 0;
    if (!b.inRing || held > 0) return { ...b, slots: held };
    return { ...b, slots: 0, inRing: false, reason: `weight ${b.weight} too small for the ring size (M=${ringSize}): no slot` };
  });
  const byId = new Map(backends.map((b) => [b.id, b]));
  return { ...plan, backends, ringMembers: plan.ringMembers.map((m) => byId.get(m.id)!) };
}
