/**
 * `xlb serve` restarted under held TCP connections into a pin directory an earlier
 * release left with one map at another layout version. The connections' backends
 * are drained first, so only the connection table keeps them there: with it adopted
 * they all complete; with a new one (another flows version) they re-hash and break.
 */
import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { MAPS } from '../control/dataplane/codec.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';

describe('xlb serve restarted over a pin directory with one map at another version', () => {
  let lab: Lab;
  let daemon: DaemonProcess;
  beforeAll(async () => {
    lab = await Lab.create('mapver');
    daemon = await lab.startDaemon();
  });
  afterAll(() => lab?.destroy());

  const put = async (path: string, body: object) => {
    const response = await daemon.api.request('PUT', path, body);
    expect(response.status, JSON.stringify(response.body)).toBeLessThan(300);
  };

  /** Polls the VIP until its ring holds `count` backends (bounded). */
  async function untilRingBackends(vip: string, count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((await daemon.api.request<VipView>('GET', vipPath('tcp', vip, LAB.tcpPort))).body.ringBackends !== count) {
      if (Date.now() > deadline) throw new Error(`VIP ${vip} never had ${count} ring backends`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  test.each([
    ['vips', LAB.vips4[0], { ok: 40, failed: 0, broken: 0 }],
    ['flows', LAB.vips4[1], { failed: 0 }],
  ] as const)('%s at another version', async (map, vip, expected) => {
    await put(vipPath('tcp', vip, LAB.tcpPort), { forwarding: 'dsr' });
    for (const n of BACKENDS) await put(vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)), {});
    await untilRingBackends(vip, BACKENDS.length);
    const heldUntil = Date.now() + 15_000;
    const held = lab.hold(vip, 40, 15_000);
    await held.connected;
    // New flows now go to backend 3 only; the held ones stay where the table has them.
    for (const n of [1, 2]) await put(vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)), { state: 'drain' });
    await untilRingBackends(vip, 1);

    await daemon.stop('SIGKILL');
    const pins = lab.lbPaths().bpffs;
    const stale = MAPS[map].replace(/_v\d+$/, '_v2');
    renameSync(join(pins, MAPS[map]), join(pins, stale));
    daemon = await lab.startDaemon();
    expect(Date.now(), 'the held connections go on after the restart').toBeLessThan(heldUntil - 2000);
    expect(readdirSync(pins)).not.toContain(stale);
    expect(readdirSync(pins)).toContain(MAPS[map]);

    const holding = await held.done;
    expect(holding).toMatchObject(expected);
    // A new table: the held connections on the drained backends re-hash onto backend 3 and break.
    if (map === 'flows') expect(holding.broken).toBeGreaterThan(0);
  });
});
