/**
 * Dataplane.newFlowsPerCpu on the real balancer through BPF_PROG_TEST_RUN: the
 * configured VIPs' new flows (connection-table misses) by CPU, as xlb_vipstat counts
 * them per CPU; hits and other VIPs' flows are not in them.
 */
import { afterEach, expect, test } from 'vitest';
import { possibleCpus } from '@xlb/native';
import { BalancerFixture, IP } from './lib/fixture.js';
import { backends4, tcp4, udp4 } from './lib/frames.js';

let f: BalancerFixture | undefined;
afterEach(() => f?.close());

const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);

test("new flows by CPU are the VIPs' per-CPU connection-table misses", () => {
  f = new BalancerFixture();
  f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
  f.addVip({ id: 3, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'ipip', backends: backends4(3) });
  for (const sport of [40000, 40001, 40002, 40003, 40004]) f.run(tcp4({ sport, flags: 'S' }));
  // A second packet of a flow is a hit, not a new flow.
  f.run(tcp4({ sport: 40000, flags: 'A' }));
  for (const sport of [50000, 50001]) f.run(udp4({ sport, dport: 53 }));

  const web = f.dp.newFlowsPerCpu([1]);
  expect(web).toHaveLength(possibleCpus());
  expect(web.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
  expect(sum(web)).toBe(5);
  expect(sum(web)).toBe(f.dp.vipStats(1).flow_misses);
  expect(sum(f.dp.newFlowsPerCpu([3]))).toBe(2);
  expect(f.dp.newFlowsPerCpu([1, 3]).map((n, cpu) => n - web[cpu]!)).toEqual(f.dp.newFlowsPerCpu([3]));
  expect(f.dp.newFlowsPerCpu([])).toEqual(new Array(possibleCpus()).fill(0));
  expect(() => f!.dp.newFlowsPerCpu([64])).toThrow(/VIP id 64 outside 0\.\.63/);
});
