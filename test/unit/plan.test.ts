/** From desired state and observations to a VIP's plan: ring membership, flags and the reasons for leaving a backend out. */
import { describe, expect, test } from 'vitest';
import { FORWARD_DSR, VIP_F_NO_CONNTRACK, VIP_F_SOURCE_AFFINITY } from '../../control/dataplane/codec.js';
import type { Health } from '../../control/checks/health.js';
import { planVip, withSlots } from '../../control/reconciler/plan.js';
import type { StoredVip } from '../../control/state/schema.js';

const vip = (backends: { id: number; state?: 'active' | 'drain'; weight?: number }[], panicThreshold = 0.5): StoredVip => ({
  protocol: 'tcp',
  address: '198.19.0.1',
  port: 80,
  id: 1,
  forwarding: 'ipip',
  affinity: 'flow',
  conntrack: true,
  panicThreshold,
  healthCheck: { type: 'tcp' },
  backends: backends.map((b) => ({ address: `198.18.0.${b.id}`, id: b.id, weight: b.weight ?? 1, state: b.state ?? 'active' })),
});
const seen = (down: number[]) => ({
  health: (_: StoredVip, b: { id: number }) => (down.includes(b.id) ? ('down' as const) : ('up' as const)),
  mac: () => null,
});
const members = (plan: ReturnType<typeof planVip>) => plan.ringMembers.map((b) => b.id).sort();

test('healthy, active, weighted backends serve; unhealthy ones are flagged so their flows re-hash', () => {
  const plan = planVip(vip([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4, weight: 0 }, { id: 5, state: 'drain' }]), seen([3]));
  expect(members(plan)).toEqual([1, 2]);
  expect(plan.panic).toBe(false);
  expect(plan.backends.find((b) => b.id === 3)).toMatchObject({ flags: 1, reason: 'health check failing' });
  expect(plan.backends.find((b) => b.id === 4)?.reason).toBe('weight 0');
  expect(plan.backends.find((b) => b.id === 5)).toMatchObject({ flags: 0, reason: 'draining' });
});

test('panic: under the threshold every non-drained backend serves, unflagged', () => {
  const plan = planVip(vip([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4, state: 'drain' }], 0.5), seen([1, 2]));
  expect(plan.panic).toBe(true);
  expect(members(plan)).toEqual([1, 2, 3]);
  expect(plan.backends.every((b) => b.flags === 0)).toBe(true);
});

test('a threshold of 0 never panics', () => {
  const plan = planVip(vip([{ id: 1 }, { id: 2 }], 0), seen([1, 2]));
  expect(plan.panic).toBe(false);
  expect(plan.ringMembers).toEqual([]);
});

describe('what a plan holds beside ring membership', () => {
  const mac = Buffer.from([2, 0, 0, 0, 0, 0x11]);
  const byAddress = (macs: Record<string, Buffer>, health: Health = 'up') => ({
    health: () => health,
    mac: (address: string) => macs[address] ?? null,
  });

  test('dsr: a backend whose MAC is not resolved stays out with the reason; a resolved one serves with its MAC', () => {
    const plan = planVip({ ...vip([{ id: 1 }, { id: 2 }]), forwarding: 'dsr' }, byAddress({ '198.18.0.1': mac }));
    expect(plan.forwarding).toBe(FORWARD_DSR);
    expect(members(plan)).toEqual([1]);
    expect(plan.backends[0]?.mac).toEqual(mac);
    expect(plan.backends[1]).toMatchObject({ inRing: false, reason: 'MAC address not resolved' });
  });

  test('health not yet known keeps a checked backend out, unflagged; a VIP without checks counts every backend up', () => {
    const unknown = planVip(vip([{ id: 1 }], 0), byAddress({}, 'unknown'));
    expect(unknown.backends[0]).toMatchObject({ inRing: false, flags: 0, reason: 'health not yet known', health: 'unknown' });
    const unchecked = planVip({ ...vip([{ id: 1 }]), healthCheck: { type: 'none' } }, byAddress({}, 'down'));
    expect(unchecked.backends[0]).toMatchObject({ inRing: true, health: 'up', flags: 0 });
  });

  test('the VIP record: protocol number and flags from affinity and conntrack', () => {
    expect(planVip(vip([]), byAddress({}))).toMatchObject({ proto: 6, flags: 0 });
    const plan = planVip({ ...vip([]), protocol: 'udp', affinity: 'source-ip', conntrack: false }, byAddress({}));
    expect(plan).toMatchObject({ proto: 17, flags: VIP_F_SOURCE_AFFINITY | VIP_F_NO_CONNTRACK });
  });

  test('withSlots: members keep their slots; a member Maglev gave none leaves the ring with the reason', () => {
    const plan = planVip(vip([{ id: 1, weight: 1000 }, { id: 2 }]), byAddress({}));
    const slotted = withSlots(plan, new Map([[1, 13]]), 13);
    expect(slotted.backends[0]).toMatchObject({ inRing: true, slots: 13 });
    expect(slotted.backends[1]).toMatchObject({ inRing: false, slots: 0, reason: 'weight 1 too small for the ring size (M=13): no slot' });
    expect(slotted.ringMembers.map((b) => b.id)).toEqual([1, 2]);
    expect(slotted.backends[1]?.flags).toBe(0); // out of the ring for want of slots, not for health
  });
});
