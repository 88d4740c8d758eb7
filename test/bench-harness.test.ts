/**
 * The restoring harness of `npm run bench` (bpf/bench/bench.bpf.c): every figure the
 * bench reports assumes the program under test sees the template frame on every
 * iteration, as a new or a known flow as the case says.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { frame } from '../bench/frames.js';
import { balancer, MAC_LB, V4_SOURCE_OFFSET, V4_TCP } from '../bench/balancer.js';
import { Harness } from '../bench/harness.js';
import { parseEthernet, parseIp, PROTO, XDP } from './lib/packet.js';

let harness: Harness;
let dp: TestDataplane;
beforeAll(() => {
  harness = new Harness();
  dp = balancer();
});
afterAll(() => {
  dp?.close();
  harness?.close();
});

const delta = (before: number, after: number) => after - before;

test('a program that pushes a header gets the template again every iteration, not its own output', () => {
  // The bench's ipip VIP (see balancer()): each iteration pushes a 20-byte outer header.
  const template = frame({ ...V4_TCP, dst: '198.19.0.2' }, MAC_LB);
  const before = dp.counters();
  const result = harness.offer(dp.program, template, { alwaysAdjustHead: true, repeat: 1000 });
  const after = dp.counters();

  expect(result.retval).toBe(XDP.TX);
  expect(delta(before.tx_ipip.packets, after.tx_ipip.packets)).toBe(1000);
  expect(delta(before.pass_not_vip.packets, after.pass_not_vip.packets)).toBe(0);
  // One outer header around the template's IP packet, not one per iteration.
  expect(result.data.length).toBe(template.length + 20);
  const outer = parseEthernet(result.data).payload;
  expect(parseIp(outer).protocol).toBe(PROTO.IPIP);
  expect(outer.subarray(20)).toEqual(parseEthernet(template).payload);
});

test('varying the flow makes every iteration a new flow; cycling N flows makes N', () => {
  const vip = 0; // the bench's v4 TCP VIP
  const misses = () => dp.vipStats(vip).flow_misses;
  const hits = () => dp.vipStats(vip).flow_hits;

  let m = misses();
  harness.offer(dp.program, frame(V4_TCP, MAC_LB), { flowOffset: V4_SOURCE_OFFSET, repeat: 1000 });
  expect(delta(m, misses())).toBe(1000);

  m = misses();
  const h = hits();
  harness.offer(dp.program, frame({ ...V4_TCP, sport: 40001 }, MAC_LB), { flowOffset: V4_SOURCE_OFFSET, flows: 100, repeat: 1000 });
  expect(delta(m, misses())).toBe(100);
  expect(delta(h, hits())).toBe(900);
});
