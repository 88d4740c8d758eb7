/** The REST API's view of what the kernel's data plane holds. */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { ETH_P_IP, ethernet, ipv4, PROTO, tcp } from './lib/packet.js';

let d: TestDaemon;
afterEach(async () => d?.close());

const put = (url: string, payload?: unknown) => d.app.inject({ method: 'PUT', url, payload: payload as object });
const get = (url: string) => d.app.inject({ method: 'GET', url });

const VIP4 = vipPath('tcp', '198.19.0.1', 80);

describe('metrics on a real data plane', () => {
  beforeEach(async () => {
    d = await startTestDaemon();
  });

  test('metrics: the connection table\'s room and the flows it holds', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    const syn = (sport: number) =>
      ethernet('02:00:00:00:00:02', '02:00:00:00:00:01', ETH_P_IP, ipv4({ src: '198.18.0.10', dst: '198.19.0.1', protocol: PROTO.TCP, payload: tcp({ src: '198.18.0.10', dst: '198.19.0.1', sport, dport: 80, flags: 'S' }) }));
    for (const sport of [40000, 40001, 40002]) d.dp.program.testRun({ data: syn(sport) });
    const text = (await get('/metrics')).body;
    expect(text).toMatch(new RegExp(`^xlb_flow_table_slots ${d.dp.flowCapacity}$`, 'm'));
    expect(text).toMatch(/^xlb_flow_table_flows 3$/m);
  });
});
