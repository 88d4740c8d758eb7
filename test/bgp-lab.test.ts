/**
 * BGP through BIRD: `xlb serve --bgp` in the lab's LB namespace peers with a BIRD
 * router namespace; the router's kernel table shows what is announced.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';

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
