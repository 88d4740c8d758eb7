/**
 * A failure the daemon catches and goes on from is counted by component, and the
 * daemon says it is not ready: here a data-plane write after a health change. A check
 * type that exists only in this test decides when the health changes.
 */
import { expect, test } from 'vitest';
import { defineCheckType } from '../control/checks/check-type.js';
import { checkTypes } from '../control/checks/registry.js';
import { vipPath } from '../control/cli/client.js';
import type { XlbEvent } from '../control/controller/views.js';

/** Probes waiting for the test's answer. */
const waiting: ((reason: string | null) => void)[] = [];
const gate = defineCheckType({
  name: 'gate-test',
  description: 'throwaway: answers when the test says',
  options: {},
  protocol: 'tcp',
  probe: () => new Promise((resolve) => waiting.push(resolve)),
});
checkTypes.set(gate.name, gate);

// The daemon's schemas take the check types when they load: after the entry above.
const { startTestDaemon } = await import('./lib/daemon.js');

test('a data-plane failure after a health change is counted, and /readyz turns 503', async () => {
  const d = await startTestDaemon();
  try {
    const vip = vipPath('tcp', '198.19.0.1', 80);
    // No panic mode: the backend stays out of the ring until its check passes, so that pass writes the ring.
    expect(
      (
        await d.app.inject({
          method: 'PUT',
          url: vip,
          payload: { forwarding: 'ipip', panicThreshold: 0, healthCheck: { type: 'gate-test' } },
        })
      ).statusCode,
    ).toBe(201);
    expect((await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, '198.18.0.11') })).statusCode).toBe(201);
    d.controller.setAttached(true, null);
    expect((await d.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(waiting).toHaveLength(1);

    d.dp.close();
    const health = new Promise<XlbEvent>((resolve) => d.controller.on('event', (event) => event.type === 'health' && resolve(event)));
    waiting.shift()!(null);
    expect(await health).toMatchObject({ backend: '198.18.0.11', from: 'unknown', to: 'up' });

    expect(d.controller.status().errors).toContainEqual(
      expect.objectContaining({ component: 'dataplane', count: 1, lastMessage: expect.stringContaining('closed') }),
    );
    expect((await d.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  } finally {
    await d.close();
  }
});
