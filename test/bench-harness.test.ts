/**
 * The restoring harness of `npm run bench` (bpf/bench/bench.bpf.c): every figure the
 * bench reports assumes the program under test sees the template frame on every
 * iteration, as a new or a known flow as the case says.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { frame } from '../bench/frames.js';
import { addBackend, balancer, MAC_LB, V4_SOURCE_OFFSET, V4_TCP } from '../bench/balancer.js';
import { flood, measureFlood, recordFlows, traceFlows } from '../bench/flood.js';
import { Harness } from '../bench/harness.js';
import { formatMac } from '../control/net/address.js';
import { packagePath } from '../control/paths.js';
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

describe('flood section', () => {
  test('what it reads through the dry run is where the program sends each flow, in the table or by the ring', () => {
    const flooded = balancer({ backends: 4 });
    try {
      const flows = recordFlows(flooded, 2_000);
      const throughProgram = () => flows.map((flow) => formatMac(flooded.program.testRun({ data: flow.ack }).data));
      // A backend added while the flows are in the table, then again after a flood
      // (whatever the table then holds of them): both times the trace names, flow by
      // flow, the backend the program sends the flow's next packet to.
      for (const floodSeconds of [0, 0.1]) {
        if (floodSeconds) flood(harness, flooded, floodSeconds);
        addBackend(flooded, 0);
        const traced = traceFlows(flooded, flows).map((answer) => answer.backendMac);
        expect(traced).toEqual(throughProgram());
      }
    } finally {
      flooded.close();
    }
  });

  test('a short run records, floods, adds a backend and reports the summary results.json keeps', () => {
    const { rows, summary } = measureFlood(harness, { flows: 2_000, floodSeconds: 0.2, costRepeat: 10_000 });
    expect(Object.keys(summary).sort()).toEqual(['establishedKept', 'floodPackets', 'floodPps', 'hitNs', 'newFlowNs']);
    expect(summary.establishedKept).toBeGreaterThanOrEqual(0);
    expect(summary.establishedKept).toBeLessThanOrEqual(1);
    expect(summary.floodPackets).toBeGreaterThan(0);
    expect(summary.floodPps).toBeGreaterThan(0);
    for (const cost of [summary.hitNs, summary.newFlowNs]) {
      expect(cost.before).toBeGreaterThan(0);
      expect(cost.after).toBeGreaterThan(0);
    }
    const kept = rows.find((row) => row.name === 'established flows kept on their backend');
    expect(kept).toMatchObject({ value: 100 * summary.establishedKept, unit: '%', target: '>= 99.9%' });
  });
});

describe('npm run bench -- SECTION... (dist/bench/run.js)', () => {
  const bench = (...args: string[]) => spawnSync(process.execPath, [packagePath('dist/bench/run.js'), ...args], { encoding: 'utf8' });
  const SECTIONS = 'packetCost, scaling, forwarding, maglev, controlPlane, flood';

  test('an unknown section stops it with exit code 2, naming the section and the valid ones, before it measures', () => {
    const results = packagePath('bench/results.json');
    const before = existsSync(results) ? readFileSync(results, 'utf8') : null;
    const { status, stderr } = bench('flood', 'flod');
    expect(status).toBe(2);
    expect(stderr).toContain('unknown section "flod"');
    expect(stderr).toContain(SECTIONS);
    expect(existsSync(results) ? readFileSync(results, 'utf8') : null).toEqual(before);
  });

  test('--help lists the sections', () => {
    const { status, stdout } = bench('--help');
    expect(status).toBe(0);
    expect(stdout).toContain(`Sections: ${SECTIONS}`);
  });
});
