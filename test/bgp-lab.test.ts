/**
 * BGP through BIRD: `xlb serve --bgp` in the lab's LB namespace peers with a BIRD
 * router namespace; the router's kernel table shows what is announced, and its BGP
 * session's withdraw count that a probe filter put back by the link watch withdraws
 * nothing.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ifNameToIndex, tcPriority, tcQuery } from '@xlb/native';
import { vipPath } from '../control/cli/client.js';
import { type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { inNamespace, nsRun, sh } from '../scripts/lab/netns.js';

let lab: Lab;
let daemon: DaemonProcess;
let bgpArgs: string[];

beforeAll(async () => {
  lab = await Lab.create('bgp', { router: true });
  bgpArgs = ['--bgp', '--bgp-asn', String(LAB.lbAsn), '--bgp-peer', `${LAB.router4}@${LAB.routerAsn}`];
  daemon = await lab.startDaemon(bgpArgs);
});
afterAll(() => lab?.destroy());

/** Polls (bounded) until the router's next hops for the VIP are `expected`. */
async function routerSees(expected: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hops = lab.routerNextHops(LAB.vip4);
    if (JSON.stringify(hops) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) throw new Error(`router next hops ${JSON.stringify(hops)}, expected ${JSON.stringify(expected)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function api(method: string, path: string, body?: unknown) {
  const response = await daemon.api.request(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

describe('BGP announcement through BIRD', () => {
  test('a VIP is announced while it has a healthy backend, withdrawn when it has none', async () => {
    await api('PUT', vipPath('tcp', LAB.vip4, 80), {
      forwarding: 'dsr',
      healthCheck: { type: 'tcp', intervalMs: 200, timeoutMs: 200, rise: 1, fall: 1 },
    });
    await api('PUT', vipPath('tcp', LAB.vip4, 80, LAB.backend4(1)));
    await routerSees([LAB.lb4]);

    await lab.killServer(1);
    await routerSees([]);
    await lab.startServer(1);
    await routerSees([LAB.lb4]);
  });

  test("xlb's tc probe filter deleted and put back at once withdraws nothing", async () => {
    // Unchecked, so only the link events could withdraw the VIP (a via-vip check could fail while the filter is gone).
    await api('PUT', vipPath('tcp', LAB.vip4, 80), { forwarding: 'dsr', healthCheck: { type: 'none' } });
    await routerSees([LAB.lb4]);
    const withdraws = () => {
      const text = sh('birdc', ['-s', join(lab.workDir, 'router', 'bird.ctl'), 'show', 'protocols', 'all', 'lb1']);
      return Number(/Import withdraws:\s+(\d+)/.exec(text)?.[1] ?? NaN);
    };
    const before = withdraws();
    expect(before).toBeGreaterThanOrEqual(0);
    const probeFilter = () => inNamespace(lab.ns.lb, () => tcQuery(ifNameToIndex('eth0')));
    const id = probeFilter();
    nsRun(lab.ns.lb, 'tc', ['filter', 'del', 'dev', 'eth0', 'egress', 'pref', String(tcPriority)]);
    for (const deadline = Date.now() + 10_000; probeFilter() !== id;) {
      if (Date.now() > deadline) throw new Error('the probe filter was not put back');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // A route announced after the repair arrives after anything the repair sent.
    const second = LAB.vips4[1];
    await api('PUT', vipPath('tcp', second, 80), { forwarding: 'dsr', healthCheck: { type: 'none' } });
    await api('PUT', vipPath('tcp', second, 80, LAB.backend4(2)));
    for (const deadline = Date.now() + 15_000; lab.routerNextHops(second).length === 0;) {
      if (Date.now() > deadline) throw new Error(`the router never learnt ${second}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(withdraws()).toBe(before);
    expect(lab.routerNextHops(LAB.vip4)).toEqual([LAB.lb4]);
    await api('DELETE', vipPath('tcp', second, 80));
  });

  test('client traffic routed by the router reaches the backends', async () => {
    nsRun(lab.ns.client, 'ip', ['route', 'replace', LAB.vipPrefix4, 'via', LAB.router4]);
    try {
      const summary = await lab.client('tcp', LAB.vip4, 50, 8);
      expect(summary.errors).toEqual([]);
      expect(summary.ok).toBe(50);
    } finally {
      nsRun(lab.ns.client, 'ip', ['route', 'replace', LAB.vipPrefix4, 'via', LAB.lb4]);
    }
  });

  test('a graceful shutdown withdraws the VIP; the next daemon announces it again', async () => {
    await daemon.stop('SIGTERM');
    await routerSees([]);
    daemon = await lab.startDaemon(bgpArgs);
    await routerSees([LAB.lb4]);
  });
});
