/**
 * The in-memory data plane the unit tests run on, held to the kernel's: the same
 * reconciles and writes on the model and on a real TestDataplane leave the same maps
 * and fail with the same errors. The kernel lists VIPs in hash order, the model in
 * insertion order; a second model listing them in reverse shows the reconciler ends
 * the same whatever the order.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { formatAddress, parseAddress } from '../control/net/address.js';
import type { Outcome } from '../control/dataplane/codec.js';
import type { Traffic, VipMapKey } from '../control/dataplane/records.js';
import { TestDataplane } from '../control/dataplane/test-dataplane.js';
import type { Health } from '../control/checks/health.js';
import { planVip } from '../control/reconciler/plan.js';
import { Reconciler } from '../control/reconciler/reconciler.js';
import type { StoredBackend, StoredVip } from '../control/state/schema.js';
import { DataplaneModel, type InspectableDataplane } from './lib/dataplane-model.js';
import { tcp4 } from './lib/frames.js';
import { storedBackend, storedVip } from './lib/stored.js';

const sizes = { ringSize: 13, maxVips: 4, maxBackends: 16, maxFlows: 64 };
const MAC = Buffer.from([2, 0, 0, 0, 0, 0x11]);

/** The model, listing VIP records last written first. */
class ReverseListingModel extends DataplaneModel {
  override listVips() {
    return super.listVips().reverse();
  }
}

/** A data plane and the reconciler a daemon would run on it. */
interface Side {
  name: string;
  dp: InspectableDataplane;
  reconciler: Reconciler;
}

let sides: Side[];
beforeEach(() => {
  const config = {
    hashSeed: 7,
    mtu: 1500,
    gatewayMac: MAC,
    sourceV4: parseAddress('198.18.0.2').bytes,
    sourceV6: parseAddress('2001:db8::2').bytes,
    sourceV4FlowBits: 4,
    sourceV6FlowBits: 8,
    flowIdleTimeout: 900,
  };
  sides = [
    { name: 'kernel', dp: TestDataplane.open(sizes) },
    { name: 'model', dp: new DataplaneModel(sizes) },
    { name: 'model listing VIPs in reverse', dp: new ReverseListingModel(sizes) },
  ].map(({ name, dp }) => {
    dp.setConfig(config);
    return { name, dp, reconciler: new Reconciler(dp) };
  });
});
afterEach(() => {
  for (const { dp } of sides) dp.close();
});

/** Everything a data plane holds, in comparable form (hash maps in key order). */
function held(dp: InspectableDataplane) {
  const { flow_key: flowKey, ...config } = dp.readConfig();
  const ids = (n: number) => Array.from({ length: n }, (_, id) => id);
  const snapshot = dp.statsSnapshot();
  const { backendFlows, ...flowTable } = dp.flowTableUse();
  return {
    config: { ...config, flowKey: flowKey.some((byte) => byte !== 0) },
    vips: dp
      .listVips()
      .map(
        ({ key, vip }) =>
          `${key.proto}/${formatAddress(key.family, key.address)}:${key.port} id=${vip.id} flags=${vip.flags} forwarding=${vip.forwarding}`,
      )
      .sort(),
    addresses: dp
      .listVipAddresses()
      .map((a) => `${formatAddress(a.family, a.address)}=${a.vips}`)
      .sort(),
    rings: Object.fromEntries(dp.ringIds().map((id) => [id, Array.from(dp.getRing(id)!)])),
    backends: Object.fromEntries(
      ids(dp.maxBackends).flatMap((id) => {
        const b = dp.getBackend(id);
        return b ? [[id, { ...b, address: formatAddress(b.family, b.address), mac: b.mac.toString('hex') }]] : [];
      }),
    ),
    usedBackendIds: dp.usedBackendIds(),
    vipStats: ids(dp.maxVips).map((id) => dp.vipStats(id)),
    backendStats: ids(dp.maxBackends).map((id) => dp.backendStats(id)),
    snapshot: { vips: ids(dp.maxVips).map(snapshot.vip), backends: ids(dp.maxBackends).map(snapshot.backend) },
    counters: dp.counters(),
    flowTable: { ...flowTable, byBackend: ids(dp.maxBackends).map(backendFlows) },
  };
}

/** What a step returned or threw (type, errno code, message), as text. */
function outcome(step: () => unknown): string {
  try {
    return `returned ${JSON.stringify(step()) ?? 'nothing'}`;
  } catch (error) {
    const e = error as Error & { code?: string };
    return `threw ${e.constructor.name} ${e.code ?? '-'} ${e.message}`;
  }
}

/** Runs `step` on every side: the models must return or throw what the kernel does and end holding the same. */
function onBoth(step: (side: Side) => unknown): string {
  const [kernel, ...models] = sides.map((side) => ({ name: side.name, outcome: outcome(() => step(side)), held: held(side.dp) }));
  for (const model of models) {
    expect(model.outcome, `what the ${model.name} returned or threw`).toBe(kernel!.outcome);
    expect(model.held, `what the ${model.name} holds`).toEqual(kernel!.held);
  }
  return kernel!.outcome;
}

const seen = (health: Record<string, Health> = {}, macs: Record<string, Buffer> = {}) => ({
  health: (_: StoredVip, b: StoredBackend) => health[b.address] ?? 'up',
  mac: (address: string) => macs[address] ?? null,
});

const backend = storedBackend;
/** A VIP with health checks, so the health observed shapes its ring. */
const vip = (id: number, address: string, backends: StoredBackend[], extra: Partial<StoredVip> = {}) =>
  storedVip(id, address, backends, { healthCheck: { type: 'tcp' }, ...extra });
const apply =
  (vips: StoredVip[], observed = seen(), scope?: ReadonlySet<number>) =>
  (side: Side) =>
    side.reconciler.apply(
      vips.map((v) => planVip(v, observed)),
      scope,
    );
const key = (address: string, port = 80): VipMapKey => {
  const { family, bytes } = parseAddress(address);
  return { family, address: bytes, port, proto: 6 };
};

describe('the model holds what the kernel holds', () => {
  test('VIPs, backends, rings, weights, health, drain, delete and a restart through the reconciler', () => {
    const web = vip(0, '198.19.0.1', [backend(0, '198.18.1.1'), backend(1, '198.18.1.2'), backend(2, '198.18.1.3')]);
    const dns = vip(1, '2001:db8:f::1', [backend(3, '2001:db8::11'), backend(4, '2001:db8::12')], {
      protocol: 'udp',
      port: 53,
      affinity: 'source-ip',
      conntrack: false,
    });
    const tls = vip(2, '198.19.0.1', [backend(5, '198.18.1.5')], { port: 443, forwarding: 'dsr', healthCheck: { type: 'none' } });
    const macs = { '198.18.1.5': MAC };
    onBoth(apply([web, dns, tls], seen({}, macs)));

    // Weights, a failing check (flagged, out of the ring), a drained backend, panic.
    web.backends[0]!.weight = 5;
    onBoth(apply([web, dns, tls], seen({ '198.18.1.2': 'down' }, macs)));
    dns.backends[1]!.state = 'drain';
    onBoth(apply([web, dns, tls], seen({ '2001:db8::11': 'down' }, macs), new Set([1])));
    // A backend deleted, a VIP deleted (scoped), a VIP given a new address under its id.
    web.backends.splice(2, 1);
    onBoth(apply([web, dns, tls], seen({}, macs)));
    onBoth(apply([web, tls], seen({}, macs), new Set([1])));
    onBoth(apply([web, { ...tls, address: '198.19.0.2' }], seen({}, macs)));
    // Every backend drained: the ring goes.
    for (const b of web.backends) b.state = 'drain';
    onBoth(apply([web], seen({}, macs)));

    // A restart: a new reconciler adopts the maps and clears what its plan leaves out.
    onBoth((side) => {
      side.reconciler = new Reconciler(side.dp);
      apply([vip(3, '198.19.0.9', [backend(0, '198.18.1.1')])])(side);
    });
  });

  test('adopting maps with stray VIP records (two under one id) removes them and recounts the addresses', () => {
    onBoth(apply([vip(0, '198.19.0.1', [backend(0, '198.18.1.1')])]));
    onBoth(({ dp }) => {
      for (const address of ['198.19.0.8', '198.19.0.9']) {
        dp.setVipAddress({ family: 4, address: parseAddress(address).bytes }, 3);
        dp.setVip(key(address), { id: 0, flags: 0, forwarding: 2 });
      }
    });
    onBoth((side) => {
      side.reconciler = new Reconciler(side.dp);
      apply([vip(0, '198.19.0.1', [backend(0, '198.18.1.1')])])(side);
    });
  });
});

describe('ring batches', () => {
  const ring = (backendId: number) => new Uint32Array(sizes.ringSize).fill(backendId);
  beforeEach(() => {
    onBoth(apply([vip(0, '198.19.0.1', [backend(0, '198.18.1.1')])]));
  });

  test('a batch closed without a commit swaps in nothing', () => {
    onBoth(({ dp }) => {
      const batch = dp.ringBatch();
      batch.set(0, ring(7));
      batch.set(1, ring(8));
      batch.close();
    });
    expect(sides.map(({ dp }) => [dp.ringIds(), dp.getRing(0)?.[0]])).toEqual(sides.map(() => [[0], 0]));
  });

  test('a batch failing part-way and closed, as the reconciler leaves it, swaps in nothing', () => {
    const outcome = onBoth(({ dp }) => {
      const batch = dp.ringBatch();
      try {
        batch.set(1, ring(8));
        batch.set(4, ring(9));
        batch.commit();
      } finally {
        batch.close();
      }
    });
    expect(outcome).toMatch(/^threw RangeError - VIP id 4 outside/);
    expect(sides.map(({ dp }) => dp.ringIds())).toEqual(sides.map(() => [0]));
  });

  test('a batch committed after a refused ring swaps in the rings set before it, the last of each id', () => {
    onBoth(({ dp }) => {
      const batch = dp.ringBatch();
      batch.set(1, ring(8));
      batch.set(0, ring(5));
      batch.set(0, ring(6));
      expect(() => batch.set(2, new Uint32Array(3))).toThrow(RangeError);
      batch.commit();
      batch.close();
    });
    expect(sides.map(({ dp }) => [dp.ringIds(), dp.getRing(0)?.[0]])).toEqual(sides.map(() => [[0, 1], 6]));
  });
});

describe('counters', () => {
  test('a VIP new on an id and a backend that leaves start from zero, as in the kernel; outcome counters carry on', () => {
    const web = vip(0, '198.19.0.1', [backend(0, '198.18.1.1'), backend(1, '198.18.1.2')], { healthCheck: { type: 'none' } });
    onBoth(apply([web]));
    // Packets through the real balancer; the models forward none and are given what the
    // kernel counted, so this compares what reconciles do to counters, not the counting.
    const [kernel, ...models] = sides.map((side) => side.dp) as [TestDataplane, ...DataplaneModel[]];
    for (const sport of [40000, 40001, 40002, 40003]) {
      const frame = tcp4({ sport, flags: 'S' });
      kernel.program.testRun({ data: frame });
    }
    for (const model of models) {
      for (const [outcome, traffic] of Object.entries(kernel.counters()) as [Outcome, Traffic][]) model.count({ outcome, ...traffic });
      const v = kernel.vipStats(0);
      model.count({ vipId: 0, packets: v.packets, bytes: v.bytes, flowHits: v.flow_hits, flowMisses: v.flow_misses });
      for (const id of [0, 1]) model.count({ backendId: id, ...kernel.backendStats(id) });
      const table = kernel.flowTableUse();
      model.flows = table.flows;
      model.flowStates = table.states;
      model.backendFlows = new Map([0, 1].map((id) => [id, table.backendFlows(id)]));
    }
    expect(kernel.vipStats(0).packets).toBe(4);
    // One packet per flow: the table holds as many flows on a backend as it was sent.
    const table = kernel.flowTableUse();
    expect(table.flows).toBe(4);
    expect([0, 1].map(table.backendFlows)).toEqual([0, 1].map((id) => kernel.backendStats(id).packets));
    onBoth(() => {});

    onBoth(apply([{ ...web, backends: [backend(0, '198.18.1.1')] }]));
    onBoth(apply([{ ...web, address: '198.19.0.2', backends: [backend(0, '198.18.1.1')] }]));
  });
});

describe('the model fails where the kernel fails, with the same error', () => {
  test('a full VIP table refuses a new key (E2BIG) and still takes a replaced one', () => {
    // Four VIP records fill the table (ids may repeat: the hash map is keyed by VIP).
    onBoth(({ dp }) => {
      for (const port of [1, 2, 3, 4]) dp.setVip(key('198.19.0.1', port), { id: 0, flags: 0, forwarding: 2 });
    });
    expect(onBoth(({ dp }) => dp.setVip(key('198.19.0.1', 5), { id: 1, flags: 0, forwarding: 2 }))).toMatch(
      /^threw Error E2BIG bpf_map_update_elem\(xlb_vips/,
    );
    expect(onBoth(({ dp }) => dp.setVip(key('198.19.0.1', 4), { id: 3, flags: 1, forwarding: 1 }))).toBe('returned nothing');
    expect(onBoth(({ dp }) => dp.removeVip(key('198.19.0.1', 9)))).toBe('returned false');
    expect(onBoth(({ dp }) => dp.removeVip(key('198.19.0.1', 1)))).toBe('returned true');
  });

  test('a full VIP address table refuses a new address (E2BIG)', () => {
    const address = (n: number) => ({ family: 4 as const, address: parseAddress(`198.19.0.${n}`).bytes });
    onBoth(({ dp }) => {
      for (const n of [1, 2, 3, 4]) dp.setVipAddress(address(n), n);
    });
    expect(onBoth(({ dp }) => dp.setVipAddress(address(5), 1))).toMatch(/^threw Error E2BIG bpf_map_update_elem\(xlb_vipaddr/);
    expect(onBoth(({ dp }) => dp.setVipAddress(address(4), 9))).toBe('returned nothing');
    expect(onBoth(({ dp }) => dp.removeVipAddress(address(6)))).toBe('returned false');
    expect(onBoth(({ dp }) => dp.removeVipAddress(address(4)))).toBe('returned true');
  });

  test.each([
    [
      'a VIP id beyond the table',
      ({ dp }: Side) => dp.setVip(key('198.19.0.1'), { id: 4, flags: 0, forwarding: 2 }),
      /^threw RangeError - VIP id 4 outside 0\.\.3$/,
    ],
    [
      'a backend id beyond the table',
      ({ dp }: Side) =>
        dp.setBackends(
          new Map([
            [3, { family: 4, address: parseAddress('198.18.1.1').bytes, mac: MAC, vipId: 0 }],
            [16, { family: 4, address: parseAddress('198.18.1.2').bytes, mac: MAC, vipId: 0 }],
          ]),
        ),
      /^threw RangeError - backend id 16 outside 0\.\.15$/,
    ],
    [
      'a VIP count of 0',
      ({ dp }: Side) => dp.setVipAddress({ family: 4, address: parseAddress('198.19.0.1').bytes }, 0),
      /^threw RangeError - VIP count 0/,
    ],
    [
      'a ring of the wrong size',
      ({ dp }: Side) => dp.setRing(0, new Uint32Array(11)),
      /^threw RangeError - ring has 11 slots, expected 13$/,
    ],
    [
      'a plan with a VIP id beyond the table',
      apply([vip(4, '198.19.0.1', [backend(0, '198.18.1.1')])]),
      /^threw RangeError - VIP id 4 outside/,
    ],
    [
      'a plan with a backend id beyond the table',
      apply([vip(0, '198.19.0.1', [backend(16, '198.18.1.1')])]),
      /^threw RangeError - backend id 16 outside/,
    ],
  ])('%s: refused, nothing written', (_, step, error) => {
    expect(onBoth(step)).toMatch(error);
  });
});
