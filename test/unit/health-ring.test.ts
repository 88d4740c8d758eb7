/**
 * Health to ring membership through a real controller and health monitor on the
 * in-memory data plane: the test's check type (lib/switch-check.ts) answers as the
 * test says, so failures and recoveries come without a network.
 */
import { afterEach, expect, test } from 'vitest';
import { failing, SWITCH_CHECK } from './lib/switch-check.js';

// The schemas take their check types from the registry when they load: after switch-check's entry.
const { startModelDaemon } = await import('../lib/model-daemon.js');
const { vipPath } = await import('../../control/cli/client.js');

let d: Awaited<ReturnType<typeof startModelDaemon>>;
afterEach(async () => d?.close());

const VIP = vipPath('tcp', '198.19.0.1', 80);
const backend = (address: string) => vipPath('tcp', '198.19.0.1', 80, address);

test('fall failures take a backend out of the ring, flagged; rise successes bring it back; each change is an event', async () => {
  d = await startModelDaemon({ ringSize: 13 });
  const events: string[] = [];
  d.controller.on('event', (event) => {
    if (event.type === 'health') events.push(`${event.backend} ${event.from}->${event.to}`);
  });
  const put = (url: string, payload?: object) => d.app.inject({ method: 'PUT', url, ...(payload && { payload }) });
  expect(
    (await put(VIP, { forwarding: 'ipip', panicThreshold: 0, healthCheck: { type: SWITCH_CHECK, intervalMs: 100, rise: 2, fall: 2 } }))
      .statusCode,
  ).toBe(201);
  for (const address of ['198.18.0.11', '198.18.0.12']) expect((await put(backend(address))).statusCode).toBe(201);

  const vipId = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.id;
  const [first, second] = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.backends.map((b) => b.id) as [
    number,
    number,
  ];
  const ringHolds = () => [...new Set(d.dp.getRing(vipId) ?? [])].sort();
  await expect.poll(ringHolds, { timeout: 5000 }).toEqual([first, second].sort());

  failing.add('198.18.0.12');
  await expect.poll(ringHolds, { timeout: 5000 }).toEqual([first]);
  expect(d.dp.getBackend(second)?.flags).toBe(1); // BACKEND_F_UNHEALTHY: its flows re-hash
  const view = d.controller.vip({ protocol: 'tcp', address: '198.19.0.1', port: 80 });
  expect(view.backends[1]).toMatchObject({
    health: 'down',
    healthReason: 'switched off through ipip to 198.18.0.12',
    inRing: false,
    reason: 'health check failing',
  });
  // The last check's end and duration are the monitor's, not made up by the view.
  expect(Date.parse(view.backends[1]!.lastCheckAt!)).toBeLessThanOrEqual(Date.now());
  expect(view.backends[1]!.lastCheckMs).toBeGreaterThanOrEqual(0);

  failing.delete('198.18.0.12');
  await expect.poll(ringHolds, { timeout: 5000 }).toEqual([first, second].sort());
  expect(d.dp.getBackend(second)?.flags).toBe(0);
  expect(events.filter((e) => e.startsWith('198.18.0.12'))).toEqual([
    '198.18.0.12 unknown->up',
    '198.18.0.12 up->down',
    '198.18.0.12 down->up',
  ]);
});
