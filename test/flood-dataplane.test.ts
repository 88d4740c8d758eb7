/**
 * Dataplane.flowCounts on the real balancer through BPF_PROG_TEST_RUN: each configured
 * VIP's new flows (connection-table misses) by online CPU, as xlb_vipstat counts them
 * per CPU, and its evictions and unrecorded packets; hits and other VIPs' flows are not
 * in them. A few VIPs are looked up one by one, more read in one batch: both agree.
 * CPUs past the highest online one are left out of the per-CPU counts.
 */
import { afterEach, expect, test } from 'vitest';
import { BpfMap, possibleCpus } from '@xlb/native';
import { vipStatsCodec } from '../control/dataplane/codec.js';
import { vipFlowCounts } from '../control/dataplane/flow-counts.js';
import { cpusThroughHighest, LOOKUPS_UP_TO, onlineCpus, perCpuValues } from '../control/dataplane/per-cpu.js';
import { perCpuSlot, u32Bytes } from '../control/dataplane/struct.js';
import { BalancerFixture, IP } from './lib/fixture.js';
import { backends4, tcp4, udp4 } from './lib/frames.js';

let f: BalancerFixture | undefined;
afterEach(() => f?.close());

const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);

test("new flows by online CPU are the VIPs' per-CPU connection-table misses, read one by one or in a batch", () => {
  f = new BalancerFixture();
  f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
  f.addVip({ id: 3, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'ipip', backends: backends4(3) });
  for (const sport of [40000, 40001, 40002, 40003, 40004]) f.run(tcp4({ sport, flags: 'S' }));
  // A second packet of a flow is a hit, not a new flow.
  f.run(tcp4({ sport: 40000, flags: 'A' }));
  for (const sport of [50000, 50001]) f.run(udp4({ sport, dport: 53 }));

  const cpus = onlineCpus();
  expect(cpus).toBeGreaterThan(0);
  expect(cpus).toBeLessThanOrEqual(possibleCpus());
  const few = f.dp.flowCounts([1, 3]);
  const web = few.get(1)!;
  expect(web.newFlows).toHaveLength(cpus);
  expect(web.newFlows.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
  expect(sum(web.newFlows)).toBe(5);
  expect(sum(web.newFlows)).toBe(f.dp.vipStats(1).flow_misses);
  expect(sum(few.get(3)!.newFlows)).toBe(2);
  const stats = f.dp.vipStats(1);
  expect(web.evictions).toEqual({
    new: stats.flow_evicted_new,
    established: stats.flow_evicted_established,
    closing: stats.flow_evicted_closing,
  });
  expect(web.unrecorded).toBe(stats.flow_unrecorded);

  // More ids than are looked up one by one: the batch reads the same counts.
  const many = Array.from({ length: LOOKUPS_UP_TO + 2 }, (_, i) => i);
  const batch = f.dp.flowCounts(many);
  expect([...batch.keys()]).toEqual(many);
  expect(batch.get(1)).toEqual(web);
  expect(batch.get(3)).toEqual(few.get(3));
  expect(batch.get(2)).toEqual({ newFlows: new Array(cpus).fill(0), evictions: { new: 0, established: 0, closing: 0 }, unrecorded: 0 });
  expect(f.dp.flowCounts([]).size).toBe(0);
  expect(() => f!.dp.flowCounts([64])).toThrow(/VIP id 64 outside 0\.\.63/);
});

test('per-CPU values count on online CPUs only: new flows on those, sums over all', () => {
  expect(cpusThroughHighest('0-1\n')).toBe(2);
  expect(cpusThroughHighest('0-3,6')).toBe(7);
  expect(cpusThroughHighest('0')).toBe(1);
  // A value of four possible CPUs read with two online: CPU 3 still counts in the sums.
  const slot = perCpuSlot(vipStatsCodec.size);
  const value = Buffer.alloc(slot * 4);
  // New flows are the misses that took a way: every unrecorded packet also missed.
  for (const cpu of [0, 1, 3]) {
    value.writeBigUInt64LE(2n ** 40n + BigInt(10 + cpu), cpu * slot + vipStatsCodec.offsets.flow_misses);
    value.writeBigUInt64LE(2n ** 40n, cpu * slot + vipStatsCodec.offsets.flow_unrecorded);
    value.writeBigUInt64LE(1n, cpu * slot + vipStatsCodec.offsets.flow_evicted_closing);
  }
  expect(vipFlowCounts(value, 2)).toEqual({
    newFlows: [10, 11],
    evictions: { new: 0, established: 0, closing: 3 },
    unrecorded: 3 * 2 ** 40,
  });
});

test('more than a few entries are read in one batch, a few one by one, with the same values', () => {
  const PERCPU_ARRAY = 6;
  const map = BpfMap.create(PERCPU_ARRAY, 4, vipStatsCodec.size, 64, 'flood_batch');
  try {
    const slot = perCpuSlot(vipStatsCodec.size);
    for (const index of [0, 5, 63]) {
      const value = Buffer.alloc(slot * possibleCpus());
      value.writeUInt32LE(index + 1, slot * (possibleCpus() - 1));
      map.update(u32Bytes(index), value);
    }
    let lookups = 0;
    let batches = 0;
    // The real map, its reads counted.
    const counted = {
      lookup: (key: Buffer) => (lookups++, map.lookup(key)),
      lookupAll: () => (batches++, map.lookupAll()),
    } as unknown as BpfMap;
    const many = Array.from({ length: 64 }, (_, i) => i);
    const batch = perCpuValues(counted, vipStatsCodec, many);
    expect({ lookups, batches }).toEqual({ lookups: 0, batches: 1 });
    const few = perCpuValues(counted, vipStatsCodec, [5, 63]);
    expect({ lookups, batches }).toEqual({ lookups: 2, batches: 1 });
    for (const index of [5, 63]) expect(batch(index)).toEqual(few(index));
    expect(batch(0)).toEqual(map.lookup(u32Bytes(0)));
  } finally {
    map.close();
  }
});
