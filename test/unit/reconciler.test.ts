/**
 * The reconciler on the in-memory data plane: diffed writes, scoped applies, adopting
 * pinned state (test/dataplane-model.test.ts holds the model to the kernel's maps).
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { formatAddress, parseAddress } from '../../control/net/address.js';
import { planVip } from '../../control/reconciler/plan.js';
import { Reconciler } from '../../control/reconciler/reconciler.js';
import type { StoredVip } from '../../control/state/schema.js';
import { DataplaneModel } from '../lib/dataplane-model.js';
import { storedBackend, storedVip } from '../lib/stored.js';

const seen = { health: () => 'up' as const, mac: () => null };
const vip = (id: number, address: string, backendIds: number[]) =>
  storedVip(
    id,
    address,
    backendIds.map((b) => storedBackend(b, `198.18.1.${b}`)),
  );
const plans = (...vips: StoredVip[]) => vips.map((v) => planVip(v, seen));
const key = (address: string) => ({ family: 4 as const, address: parseAddress(address).bytes, port: 80, proto: 6 });
const heldAddresses = () => Object.fromEntries(dp.listVipAddresses().map((a) => [formatAddress(a.family, a.address), a.vips]));
const heldVips = () =>
  dp
    .listVips()
    .map(({ key: k, vip: v }) => `${formatAddress(k.family, k.address)}=${v.id}`)
    .sort();

let dp: DataplaneModel;
let writes: string[];
beforeEach(() => {
  dp = new DataplaneModel({ ringSize: 13, maxVips: 8, maxBackends: 32, maxFlows: 64 });
  writes = [];
  // A ring batch that swaps in at least one ring counts as one write, 'setRings'.
  const ringBatch = dp.ringBatch.bind(dp);
  dp.ringBatch = () => {
    const batch = ringBatch();
    let rings = 0;
    return {
      set: (vipId, backendIds) => {
        batch.set(vipId, backendIds);
        rings++;
      },
      commit: () => {
        batch.commit();
        if (rings) writes.push('setRings');
        rings = 0;
      },
      close: () => batch.close(),
    };
  };
  for (const method of [
    'setVip',
    'removeVip',
    'setVipAddress',
    'removeVipAddress',
    'setBackends',
    'removeBackend',
    'setRing',
    'removeRing',
  ] as const) {
    const original = dp[method].bind(dp) as (...args: unknown[]) => unknown;
    (dp as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      // A batch of backend records counts as one write per record.
      if (method === 'setBackends') for (let i = 0; i < (args[0] as Map<number, unknown>).size; i++) writes.push('setBackend');
      else writes.push(method);
      return original(...args);
    };
  }
});

describe('reconciler', () => {
  test('writes only what changed', () => {
    const r = new Reconciler(dp);
    r.apply(plans(vip(0, '198.19.0.1', [1, 2])));
    expect(writes.sort()).toEqual(['setBackend', 'setBackend', 'setRings', 'setVip', 'setVipAddress']);
    writes = [];
    r.apply(plans(vip(0, '198.19.0.1', [1, 2])));
    expect(writes).toEqual([]);
    r.apply(plans(vip(0, '198.19.0.1', [1, 2, 3])));
    expect(writes.sort()).toEqual(['setBackend', 'setRings']);
    writes = [];
    r.apply(plans(vip(0, '198.19.0.1', [1, 3])));
    expect(writes).toEqual(['setRings', 'removeBackend']); // the ring stops naming 2 before its record goes
  });

  test('one batch swaps in the rings of every VIP an apply changes', () => {
    const r = new Reconciler(dp);
    r.apply(plans(vip(0, '198.19.0.1', [1]), vip(1, '198.19.0.2', [2]), vip(2, '198.19.0.3', [3])));
    expect(writes.filter((w) => w === 'setRings')).toHaveLength(1);
    expect(dp.ringIds()).toEqual([0, 1, 2]);
    // Built one after another in one reused array, each ring still holds its own VIP's backend.
    for (const id of [0, 1, 2]) expect(dp.getRing(id)).toEqual(new Uint32Array(13).fill(id + 1));
  });

  test('a scoped apply touches only its VIPs, and removes a scoped VIP missing from the plans', () => {
    const r = new Reconciler(dp);
    r.apply(plans(vip(0, '198.19.0.1', [1]), vip(1, '198.19.0.2', [2])));
    writes = [];
    r.apply(plans(vip(0, '198.19.0.1', [1, 3]), vip(1, '198.19.0.2', [2, 4])), new Set([0]));
    expect(dp.getRing(1)).toEqual(new Uint32Array(13).fill(2));
    expect(new Set(dp.getRing(0))).toEqual(new Set([1, 3]));
    r.apply(plans(vip(1, '198.19.0.2', [2])), new Set([0]));
    expect(dp.getVip(key('198.19.0.1'))).toBeNull();
    expect(dp.getRing(0)).toBeNull();
    expect(dp.usedBackendIds()).toEqual([2]);
  });

  test('adopting pinned maps keeps what the plan keeps and clears leftovers', () => {
    new Reconciler(dp).apply(plans(vip(0, '198.19.0.1', [1, 2]), vip(1, '198.19.0.2', [3])));
    // A new daemon: VIP .1 moved to id 5, .2 is gone, backend 2 is gone.
    const r = new Reconciler(dp);
    r.apply(plans(vip(5, '198.19.0.1', [1])));
    expect(dp.getVip(key('198.19.0.1'))?.id).toBe(5);
    expect(dp.getVip(key('198.19.0.2'))).toBeNull();
    expect(dp.ringIds()).toEqual([5]);
    expect(dp.usedBackendIds()).toEqual([1]);
  });

  test('an address is counted before its first VIP record is written and uncounted after its last one goes', () => {
    const r = new Reconciler(dp);
    const addressWrites = () => writes.filter((w) => ['setVip', 'removeVip', 'setVipAddress', 'removeVipAddress'].includes(w));
    r.apply(plans(vip(0, '198.19.0.1', [1])));
    expect(addressWrites()).toEqual(['setVipAddress', 'setVip']);
    writes = [];
    r.apply(plans(vip(0, '198.19.0.1', [1]), { ...vip(1, '198.19.0.1', [2]), port: 443 }));
    expect(addressWrites()).toEqual(['setVipAddress', 'setVip']);
    expect(heldAddresses()).toEqual({ '198.19.0.1': 2 });
    writes = [];
    r.apply(plans({ ...vip(1, '198.19.0.1', [2]), port: 443 }));
    expect(addressWrites()).toEqual(['removeVip', 'setVipAddress']);
    expect(heldAddresses()).toEqual({ '198.19.0.1': 1 });
    writes = [];
    r.apply(plans());
    expect(addressWrites()).toEqual(['removeVip', 'removeVipAddress']);
    expect(heldAddresses()).toEqual({});
  });

  test('adopting: VIP records no written VIP accounts for (more than one under an id) are removed and uncounted', () => {
    new Reconciler(dp).apply(plans(vip(0, '198.19.0.1', [1])));
    for (const address of ['198.19.0.8', '198.19.0.9']) {
      dp.setVipAddress({ family: 4, address: parseAddress(address).bytes }, 1);
      dp.setVip(key(address), { id: 0, flags: 0, forwarding: 2 });
    }
    new Reconciler(dp).apply(plans(vip(0, '198.19.0.1', [1])));
    expect(heldVips()).toEqual(['198.19.0.1=0']);
    expect(heldAddresses()).toEqual({ '198.19.0.1': 1 });
  });

  test("a VIP new on an id starts from zero stats; a backend's stats go with its record", () => {
    const r = new Reconciler(dp);
    r.apply(plans(vip(0, '198.19.0.1', [1, 2])));
    dp.count({ outcome: 'tx_ipip', vipId: 0, backendId: 1, packets: 5, bytes: 500 });
    dp.count({ outcome: 'tx_ipip', vipId: 0, backendId: 2, packets: 1, bytes: 100 });
    r.apply(plans(vip(0, '198.19.0.1', [1])));
    expect(dp.vipStats(0)).toMatchObject({ packets: 6, bytes: 600 }); // the same VIP carries on
    expect(dp.backendStats(1)).toEqual({ packets: 5, bytes: 500 });
    expect(dp.backendStats(2)).toEqual({ packets: 0, bytes: 0 });
    r.apply(plans(vip(0, '198.19.0.2', [1])));
    expect(dp.vipStats(0)).toMatchObject({ packets: 0, bytes: 0 });
  });

  test('the slots each member holds are counted from the ring built', () => {
    const r = new Reconciler(dp);
    const heavy = vip(0, '198.19.0.1', [1, 2, 3]);
    heavy.backends[0]!.weight = 1000;
    r.apply(plans(heavy));
    const ring = dp.getRing(0)!;
    const counted = Object.fromEntries([1, 2, 3].map((id) => [id, ring.filter((slot) => slot === id).length]).filter(([, n]) => n));
    expect(Object.fromEntries(r.slots(0))).toEqual(counted);
    expect(r.slots(0).get(1)).toBe(13); // weight 1000 against 1 and 1 takes every slot of 13
  });
});
