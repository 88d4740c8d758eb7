/**
 * Flood awareness through a real controller and app on the in-memory data plane: the
 * new-flow, eviction and table-state metrics, and a flood the controller's own
 * once-a-second watch finds with nobody reading stats (its event, xlb_flood_active and
 * /v1/stats's flood).
 */
import { afterEach, expect, test } from 'vitest';
import { vipPath } from '../../control/cli/client.js';
import type { StatsView } from '../../control/controller/views.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

let d: ModelDaemon | undefined;
afterEach(async () => d?.close());

const metrics = async (daemon: ModelDaemon) => (await daemon.app.inject({ method: 'GET', url: '/metrics' })).body;
const sample = (text: string, name: string, labels = '') =>
  text.match(new RegExp(`^${name}${labels ? `\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\}` : ''} (\\S+)$`, 'm'))?.[1];

/** A daemon with one VIP; its id. */
async function withVip(floodThreshold?: number): Promise<{ daemon: ModelDaemon; vipId: number }> {
  const daemon = (d = await startModelDaemon(floodThreshold === undefined ? {} : { floodThreshold }));
  await daemon.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80), payload: { forwarding: 'ipip' } });
  await daemon.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, '198.18.0.11') });
  return { daemon, vipId: daemon.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.id };
}

test('new flows by CPU, evictions by class, unrecorded packets and the table by state', async () => {
  const { daemon, vipId } = await withVip();
  daemon.dp.newFlowsByVip.set(vipId, [7, 9]);
  // A VIP id no VIP has: its counts are not the configured VIPs'.
  daemon.dp.newFlowsByVip.set(vipId + 1, [1000, 1000]);
  daemon.dp.countVip(vipId, { flow_evicted_new: 5, flow_evicted_established: 2, flow_evicted_closing: 3, flow_unrecorded: 4 });
  daemon.dp.flowStates = { new: 11, established: 12, closing: 13 };
  const text = await metrics(daemon);
  expect(sample(text, 'xlb_flow_new_total', 'cpu="0"')).toBe('7');
  expect(sample(text, 'xlb_flow_new_total', 'cpu="1"')).toBe('9');
  expect(sample(text, 'xlb_flow_evictions_total', 'class="new"')).toBe('5');
  expect(sample(text, 'xlb_flow_evictions_total', 'class="established"')).toBe('2');
  expect(sample(text, 'xlb_flow_evictions_total', 'class="closing"')).toBe('3');
  expect(sample(text, 'xlb_flow_unrecorded_total')).toBe('4');
  expect(sample(text, 'xlb_flow_table_flows', 'state="new"')).toBe('11');
  expect(sample(text, 'xlb_flow_table_flows', 'state="established"')).toBe('12');
  expect(sample(text, 'xlb_flow_table_flows', 'state="closing"')).toBe('13');
  expect(sample(text, 'xlb_flood_active')).toBe('0');
  expect(text).toMatch(/^# TYPE xlb_flow_new_total counter$/m);
  expect(text).toMatch(/^# TYPE xlb_flood_active gauge$/m);

  const stats = (await daemon.app.inject({ method: 'GET', url: '/v1/stats' })).json<StatsView>();
  expect(stats.flowTable).toMatchObject({
    states: { new: 11, established: 12, closing: 13 },
    evictions: { new: 5, established: 2, closing: 3 },
    unrecorded: 4,
  });
  expect(stats.flood).toMatchObject({ active: false, since: null, threshold: 125_000, peakPerSecond: null });
});

test('the flow counters only grow: a VIP removed takes nothing away, one added on its id brings only its own', async () => {
  const { daemon, vipId } = await withVip();
  const other = { protocol: 'tcp', address: '198.19.0.2', port: 80 } as const;
  await daemon.app.inject({ method: 'PUT', url: vipPath(other.protocol, other.address, other.port), payload: { forwarding: 'ipip' } });
  const otherId = daemon.controller.storedVip(other)!.id;
  daemon.dp.newFlowsByVip.set(vipId, [7, 9]);
  daemon.dp.countVip(vipId, { flow_evicted_established: 2, flow_unrecorded: 4 });
  daemon.dp.newFlowsByVip.set(otherId, [100, 200]);
  daemon.dp.countVip(otherId, { flow_evicted_established: 50, flow_unrecorded: 60 });
  const counters = async () => {
    const text = await metrics(daemon);
    return ['cpu="0"', 'cpu="1"']
      .map((cpu) => sample(text, 'xlb_flow_new_total', cpu))
      .concat(sample(text, 'xlb_flow_evictions_total', 'class="established"'), sample(text, 'xlb_flow_unrecorded_total'));
  };
  expect(await counters()).toEqual(['107', '209', '52', '64']);
  await daemon.app.inject({ method: 'DELETE', url: vipPath(other.protocol, other.address, other.port) });
  expect(await counters()).toEqual(['107', '209', '52', '64']);
  // A new VIP on the freed id starts from zero stats: its flows count once, from 0.
  const next = { protocol: 'udp', address: '198.19.0.3', port: 53 } as const;
  await daemon.app.inject({ method: 'PUT', url: vipPath(next.protocol, next.address, next.port), payload: { forwarding: 'ipip' } });
  expect(daemon.controller.storedVip(next)!.id).toBe(otherId);
  daemon.dp.newFlowsByVip.set(otherId, [1, 2]);
  daemon.dp.countVip(otherId, { flow_unrecorded: 3 });
  daemon.dp.newFlowsByVip.set(vipId, [8, 9]);
  expect(await counters()).toEqual(['109', '211', '52', '67']);
  const stats = (await daemon.app.inject({ method: 'GET', url: '/v1/stats' })).json<StatsView>();
  expect(stats.flowTable).toMatchObject({ evictions: { new: 0, established: 52, closing: 0 }, unrecorded: 67 });
});

test('the watch finds a flood every second with nobody reading: an event, xlb_flood_active and /v1/stats say so', async () => {
  const { daemon, vipId } = await withVip(1000);
  const deadline = Date.now() + 8000;
  // Well over 1000 new flows a second on CPU 1, until the watch has seen two windows of it.
  let flows = 0;
  while (!daemon.controller.history.replay(0).some((e) => e.type === 'flood')) {
    if (Date.now() > deadline) throw new Error('no flood event');
    daemon.dp.newFlowsByVip.set(vipId, [0, (flows += 1000)]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const event = daemon.controller.history.replay(0).find((e) => e.type === 'flood')!;
  expect(event).toMatchObject({ type: 'flood', active: true, threshold: 1000 });
  expect((event as { peakPerSecond: number }).peakPerSecond).toBeGreaterThanOrEqual(1000);
  expect(sample(await metrics(daemon), 'xlb_flood_active')).toBe('1');
  const { flood } = (await daemon.app.inject({ method: 'GET', url: '/v1/stats' })).json<StatsView>();
  expect(flood).toMatchObject({ active: true, threshold: 1000, since: (event as { since: string }).since });
});
