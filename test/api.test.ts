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
    expect(text).toMatch(/^xlb_flow_table_flows 3$/m);
  });

  test('rates: readers within a tick share the last completed window; a read a tick later ends it', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    // A gateway for the tunnelled packets: without one they are dropped (no route) and not counted as the VIP's.
    d.dp.setConfig(testConfig({ gatewayMac: parseMac('02:00:00:00:00:fe') }));
    const send = (count: number) => {
      for (let i = 0; i < count; i++) d.dp.program.testRun({ data: tcp4({ sport: 41000 + i, flags: 'S' }) });
    };
    // No await from here on: the controller's own tick cannot end a window in between.
    d.controller.sampleRates(0);
    send(10);
    d.controller.sampleRates(2000);
    const first = d.controller.stats(2000);
    send(4);
    const second = d.controller.stats(2500);
    const third = d.controller.stats(2999);
    expect(first.vips[0]).toMatchObject({ packets: 10, packetsPerSecond: 5, bytesPerSecond: first.vips[0]!.bytes / 2 });
    expect(first.vips[0]!.backends[0]).toMatchObject({ packets: 10, packetsPerSecond: 5 });
    for (const later of [second, third]) {
      expect(later.vips[0]).toMatchObject({ packets: 14, packetsPerSecond: 5, bytesPerSecond: first.vips[0]!.bytesPerSecond });
      expect(later.vips[0]!.backends[0]).toMatchObject({ packets: 14, packetsPerSecond: 5 });
    }
    // A read a tick after the window ended ends the next one: 4 packets in 1 s.
    expect(d.controller.stats(3000).vips[0]).toMatchObject({ packets: 14, packetsPerSecond: 4 });
  });
});
