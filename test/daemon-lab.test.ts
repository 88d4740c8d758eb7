/**
 * `xlb serve` in the netns lab, driven through its REST API, with real TCP from the
 * client: traffic split, weights, health-check failover, adding and draining
 * backends, and a SIGKILL + restart of the daemon under traffic.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';

const CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 200, rise: 1, fall: 2 } as const;

let lab: Lab;
let daemon: DaemonProcess;

beforeAll(async () => {
  lab = await Lab.create('daemon');
  daemon = await lab.startDaemon();
});
afterAll(() => lab?.destroy());

const api = <T = VipView>(method: string, path: string, body?: unknown) => daemon.call<T>(method, path, body);

/** Polls the VIP until `done` holds (bounded); returns the view and how long it took. */
async function until(vip: string, done: (v: VipView) => boolean, timeoutMs = 10_000): Promise<{ view: VipView; ms: number }> {
  const start = Date.now();
  for (;;) {
    const view = await api('GET', vipPath('tcp', vip, LAB.tcpPort));
    if (done(view)) return { view, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`VIP ${vip} never reached the expected state: ${JSON.stringify(view.backends)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function createVip(vip: string, forwarding: 'dsr' | 'ipip', backends: { n: number; weight?: number }[]): Promise<void> {
  await api('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding, healthCheck: CHECK });
  for (const { n, weight } of backends) await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)), { weight: weight ?? 1 });
  // Checked up, not only in the ring: a VIP whose backends are all unknown is in panic, its ring all of them.
  await until(
    vip,
    (v) => v.ringBackends === backends.filter((b) => (b.weight ?? 1) > 0).length && v.backends.every((b) => b.health === 'up'),
  );
}

const share = (counts: Record<string, number>, name: string, total: number) => (counts[name] ?? 0) / total;

describe('xlb serve in the lab', () => {
  test('equal weights split 1200 flows within a few percent (dsr)', async () => {
    await createVip(
      LAB.vips4[0],
      'dsr',
      BACKENDS.map((n) => ({ n })),
    );
    const summary = await lab.client('tcp', LAB.vips4[0], 1200, 16);
    expect(summary.errors).toEqual([]);
    expect(summary.ok).toBe(1200);
    for (const n of BACKENDS) expect(Math.abs(share(summary.byBackend, `b${n}`, 1200) - 1 / 3)).toBeLessThan(0.06);
  });

  test('weights 3:1 are respected (ipip)', async () => {
    await createVip(LAB.vips4[1], 'ipip', [
      { n: 1, weight: 3 },
      { n: 2, weight: 1 },
    ]);
    const summary = await lab.client('tcp', LAB.vips4[1], 1200, 16);
    expect(summary.ok).toBe(1200);
    expect(Math.abs(share(summary.byBackend, 'b1', 1200) - 0.75)).toBeLessThan(0.05);
    expect(Math.abs(share(summary.byBackend, 'b2', 1200) - 0.25)).toBeLessThan(0.05);
    expect(summary.byBackend.b3).toBeUndefined();
  });

  test("a killed backend leaves the ring within interval x fall; new connections all succeed; survivors' connections hold", async () => {
    const vip = LAB.vips4[2];
    await createVip(
      vip,
      'dsr',
      BACKENDS.map((n) => ({ n })),
    );
    const held = lab.hold(vip, 30, 2500);
    await held.connected;
    const killedAt = Date.now();
    await lab.killServer(2);
    try {
      const { view } = await until(vip, (v) => v.backends.some((b) => b.address === LAB.backend4(2) && !b.inRing));
      const outAfter = Date.now() - killedAt;
      // Two failed checks, interval jitter (+10%), check timeout and the poll: a small margin.
      expect(outAfter).toBeLessThan(CHECK.intervalMs * CHECK.fall * 1.1 + CHECK.timeoutMs + 500);
      expect(view.backends.find((b) => b.address === LAB.backend4(2))).toMatchObject({ health: 'down', reason: 'health check failing' });

      const after = await lab.client('tcp', vip, 300, 16);
      expect(after.errors).toEqual([]);
      expect(after.ok).toBe(300);
      expect(after.byBackend.b2).toBeUndefined();

      const holding = await held.done;
      expect(holding.failed).toBe(0);
      for (const [backend, n] of Object.entries(holding.brokenByBackend)) expect({ backend, n }).toEqual({ backend: 'b2', n });
    } finally {
      await lab.startServer(2);
    }
    await until(vip, (v) => v.ringBackends === 3);
  });

  test('adding a backend breaks no connection and it takes new flows', async () => {
    const vip = LAB.vips4[3];
    await createVip(vip, 'ipip', [{ n: 1 }, { n: 2 }]);
    const held = lab.hold(vip, 30, 1500);
    await held.connected;
    await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(3)));
    await until(vip, (v) => v.ringBackends === 3);
    const holding = await held.done;
    expect(holding).toMatchObject({ ok: 30, failed: 0, broken: 0 });
    const fresh = await lab.client('tcp', vip, 300, 16);
    expect(fresh.ok).toBe(300);
    expect(fresh.byBackend.b3).toBeGreaterThan(0);
  });

  test('drain: no new flows to the drained backend while its open connections complete', async () => {
    const vip = LAB.vips4[4];
    await createVip(
      vip,
      'dsr',
      BACKENDS.map((n) => ({ n })),
    );
    const held = lab.hold(vip, 30, 1500);
    await held.connected;
    await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(1)), { weight: 1, state: 'drain' });
    await until(vip, (v) => v.ringBackends === 2);
    const fresh = await lab.client('tcp', vip, 300, 16);
    expect(fresh.ok).toBe(300);
    expect(fresh.byBackend.b1).toBeUndefined();
    const holding = await held.done;
    expect(holding).toMatchObject({ ok: 30, failed: 0, broken: 0 });
    expect(holding.byBackend.b1).toBeGreaterThan(0);
  });

  test('SIGKILL and restart of the daemon under traffic fails and breaks no connection; state survives', async () => {
    const vip = LAB.vips4[0];
    const before = await api<{ vips: VipView[] }>('GET', '/v1/vips');
    const held = lab.hold(vip, 40, 3000);
    await held.connected;
    const flows = lab.client('tcp', vip, 1500, 8);
    await daemon.stop('SIGKILL');
    daemon = await lab.startDaemon();
    const [holding, summary] = await Promise.all([held.done, flows]);
    expect(holding).toMatchObject({ ok: 40, failed: 0, broken: 0 });
    expect(summary.errors).toEqual([]);
    expect(summary.ok).toBe(1500);

    const after = await api<{ vips: VipView[] }>('GET', '/v1/vips');
    const config = (v: { vips: VipView[] }) =>
      v.vips.map(({ backends, panic, ringBackends, ...rest }) => ({
        ...rest,
        backends: backends.map((b) => [b.address, b.weight, b.state]),
      }));
    expect(config(after)).toEqual(config(before));
  });
});
