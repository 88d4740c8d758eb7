/** The REST API's view of what the kernel's data plane holds. */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { parseMac } from '../control/net/address.js';
import { testConfig } from '../control/dataplane/test-dataplane.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { tcp4 } from './lib/frames.js';

let d: TestDaemon;
afterEach(async () => d?.close());

const put = (url: string, payload?: unknown) => d.app.inject({ method: 'PUT', url, payload: payload as object });
const get = (url: string) => d.app.inject({ method: 'GET', url });

const VIP4 = vipPath('tcp', '198.19.0.1', 80);

describe('metrics on a real data plane', () => {
  beforeEach(async () => {
    d = await startTestDaemon();
  });

  test("metrics: the connection table's room and the flows it holds", async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    for (const sport of [40000, 40001, 40002]) d.dp.program.testRun({ data: tcp4({ sport, flags: 'S' }) });
    const text = (await get('/metrics')).body;
    expect(text).toMatch(new RegExp(`^xlb_flow_table_slots ${d.dp.flowCapacity}$`, 'm'));
    expect(text).toMatch(/^xlb_flow_table_flows\{state="new"\} 3$/m);
  });

  test('rates: every reader gets the same fixed window of one second, the packets sent in it', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    // A gateway for the tunnelled packets: without one they are dropped (no route) and not counted as the VIP's.
    d.dp.setConfig(testConfig({ gatewayMac: parseMac('02:00:00:00:00:fe') }));
    const seconds = (w: { start: string; end: string }) => (Date.parse(w.end) - Date.parse(w.start)) / 1000;

    // Nobody read rates yet: the first read waits for a whole window.
    const first = await d.controller.ratedStats();
    expect(seconds(first.window!)).toBeGreaterThanOrEqual(0.99);
    // Sent at once (no await), so within the next window.
    for (let i = 0; i < 10; i++) d.dp.program.testRun({ data: tcp4({ sport: 41000 + i, flags: 'S' }) });
    await expect.poll(() => d.controller.stats().window?.end, { timeout: 5000 }).not.toBe(first.window!.end);

    const viaApi = (await get('/v1/stats')).json();
    const direct = d.controller.stats();
    expect(viaApi.window).toEqual(direct.window);
    expect(direct.window!.start).toBe(first.window!.end);
    const window = seconds(direct.window!);
    expect(window).toBeGreaterThanOrEqual(0.99);
    for (const stats of [viaApi, direct]) {
      expect(stats.vips[0]).toMatchObject({ packets: 10, packetsPerSecond: 10 / window });
      expect(stats.vips[0].backends[0]).toMatchObject({ packets: 10, packetsPerSecond: 10 / window });
    }
  });
});
