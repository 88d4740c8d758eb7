/** The OpenAPI document's examples say what the daemon says: health reasons name the path the probe took. */
import { describe, expect, test } from 'vitest';
import { eventExamples } from '../../control/api/event-schema.js';
import { vipExample } from '../../control/api/examples.js';

/** The path a real failure names (checks/check-type.ts pathReason): "... through dsr to ADDR" or "direct to ADDR: ...". */
const namesItsPath = (reason: string, via: string, forwarding: string, backend: string) =>
  via === 'vip' ? reason.endsWith(` through ${forwarding} to ${backend}`) : reason.startsWith(`direct to ${backend}: `);

describe('example health reasons name the path, as the daemon words them', () => {
  const backends = vipExample.backends.flatMap((b) =>
    [b.healthReason, b.lastFailureReason].flatMap((reason) => (reason === null ? [] : [{ address: b.address, via: b.via, reason }])),
  );

  test('the VIP example has failures to show', () => expect(backends.length).toBeGreaterThan(0));

  test.each(backends)('backend $address: $reason', ({ address, via, reason }) =>
    expect(namesItsPath(reason, via, vipExample.forwarding, address)).toBe(true),
  );

  const healthEvents = eventExamples.flatMap((e) => (e.type === 'health' && e.reason !== null ? [e] : []));
  test.each(healthEvents)('health event $backend: $reason', (event) => {
    expect(event.vip).toMatchObject({ protocol: vipExample.protocol, address: vipExample.address, port: vipExample.port });
    expect(namesItsPath(event.reason!, event.via, vipExample.forwarding, event.backend)).toBe(true);
  });
});
