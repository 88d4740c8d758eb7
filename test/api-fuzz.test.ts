/**
 * Property-based API fuzzing (fast-check) against a live controller and data plane:
 * random sequences of valid and invalid requests are each answered with a 2xx or a
 * documented 4xx, never a 5xx; the API's state always equals a model built from the
 * accepted requests alone; and concurrent writers on one VIP leave a ring made of
 * exactly the backends the final state says should serve.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';

const DOCUMENTED = new Set([200, 201, 204, 400, 404, 409]);
const VIPS = ['198.19.0.1', '198.19.0.2', '2001:db8:f::1'];
const BACKENDS = ['198.18.0.11', '198.18.0.12', '2001:db8::11', '2001:db8::12'];

type Model = Map<string, { forwarding: string; backends: Map<string, { weight: number; state: string }> }>;

const vipArb = fc.record({ protocol: fc.constantFrom('tcp', 'udp'), address: fc.constantFrom(...VIPS), port: fc.constantFrom(80, 443) });
const junk = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
const vipBodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ forwarding: fc.constantFrom('dsr', 'ipip') }) },
  { weight: 1, arbitrary: fc.record({ forwarding: fc.oneof(fc.constantFrom('dsr', 'ipip', 'nat'), junk) }, { requiredKeys: [] }) },
  {
    weight: 1,
    arbitrary: fc.record(
      { forwarding: fc.constantFrom('dsr', 'ipip'), panicThreshold: fc.oneof(fc.double({ min: -1, max: 2 }), junk), extra: junk },
      { requiredKeys: ['forwarding'] },
    ),
  },
);
const backendBodyArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ weight: fc.integer({ min: 0, max: 5 }), state: fc.constantFrom('active', 'drain') }, { requiredKeys: [] }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { weight: fc.oneof(fc.integer({ min: -2, max: 1e9 }), junk), state: fc.oneof(fc.constantFrom('active', 'drain', 'paused'), junk) },
      { requiredKeys: [] },
    ),
  },
);
const commandArb = fc.oneof(
  fc.record({ kind: fc.constant('putVip' as const), vip: vipArb, body: vipBodyArb }),
  fc.record({ kind: fc.constant('deleteVip' as const), vip: vipArb }),
  fc.record({
    kind: fc.constant('putBackend' as const),
    vip: vipArb,
    backend: fc.oneof(fc.constantFrom(...BACKENDS), fc.constantFrom('not-an-ip', '198.18.0.300')),
    body: backendBodyArb,
  }),
  fc.record({ kind: fc.constant('deleteBackend' as const), vip: vipArb, backend: fc.constantFrom(...BACKENDS) }),
);
type Command = typeof commandArb extends fc.Arbitrary<infer T> ? T : never;

const keyOf = (v: { protocol: string; address: string; port: number }) => `${v.protocol}/${v.address}/${v.port}`;

function expectedState(model: Model) {
  return [...model.entries()]
    .map(([key, v]) => ({
      key,
      forwarding: v.forwarding,
      backends: [...v.backends.entries()].map(([address, b]) => ({ address, ...b })).sort((a, b) => a.address.localeCompare(b.address)),
    }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

function actualState(vips: VipView[]) {
  return vips
    .map((v) => ({
      key: keyOf(v),
      forwarding: v.forwarding,
      backends: v.backends
        .map((b) => ({ address: b.address, weight: b.weight, state: b.state }))
        .sort((a, b) => a.address.localeCompare(b.address)),
    }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon({ maxVips: 2, maxBackends: 6 });
});
afterAll(() => d?.close());

async function send(command: Command) {
  const { vip } = command;
  switch (command.kind) {
    case 'putVip':
      return d.app.inject({ method: 'PUT', url: vipPath(vip.protocol, vip.address, vip.port), payload: command.body as object });
    case 'deleteVip':
      return d.app.inject({ method: 'DELETE', url: vipPath(vip.protocol, vip.address, vip.port) });
    case 'putBackend':
      return d.app.inject({
        method: 'PUT',
        url: vipPath(vip.protocol, vip.address, vip.port, command.backend),
        payload: command.body as object,
      });
    case 'deleteBackend':
      return d.app.inject({ method: 'DELETE', url: vipPath(vip.protocol, vip.address, vip.port, command.backend) });
  }
}

/** What an accepted request does to the model. */
function apply(model: Model, command: Command): void {
  const key = keyOf(command.vip);
  switch (command.kind) {
    case 'putVip': {
      const body = command.body as { forwarding: string };
      model.set(key, { forwarding: body.forwarding, backends: model.get(key)?.backends ?? new Map() });
      return;
    }
    case 'deleteVip':
      model.delete(key);
      return;
    case 'putBackend': {
      const body = command.body as { weight?: number; state?: string };
      model.get(key)!.backends.set(command.backend, { weight: body.weight ?? 1, state: body.state ?? 'active' });
      return;
    }
    case 'deleteBackend':
      model.get(key)!.backends.delete(command.backend);
  }
}

async function reset(): Promise<void> {
  const { vips } = (await d.app.inject({ method: 'GET', url: '/v1/vips' })).json<{ vips: VipView[] }>();
  for (const v of vips) await d.app.inject({ method: 'DELETE', url: vipPath(v.protocol, v.address, v.port) });
}

describe('API fuzzing', () => {
  test('every answer is 2xx or a documented 4xx, and the state always equals the model of accepted requests', async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 25 }), async (commands) => {
        await reset();
        const model: Model = new Map();
        for (const command of commands) {
          const res = await send(command);
          seen.add(res.statusCode);
          expect(DOCUMENTED.has(res.statusCode), `${command.kind} answered ${res.statusCode}: ${res.body}`).toBe(true);
          if (res.statusCode >= 400) expect(res.json().error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
          else apply(model, command);
          const { vips } = (await d.app.inject({ method: 'GET', url: '/v1/vips' })).json<{ vips: VipView[] }>();
          expect(actualState(vips)).toEqual(expectedState(model));
        }
      }),
      { numRuns: 60, seed: 0x5eed },
    );
    // The runs reached every kind of answer, conflicts and capacity included.
    expect([...seen].sort()).toEqual([...DOCUMENTED].sort());
  });

  test('concurrent writers on one VIP end with a ring of exactly the backends that should serve', async () => {
    await reset();
    const vip = { protocol: 'tcp', address: '198.19.0.1', port: 80 };
    expect(
      (await d.app.inject({ method: 'PUT', url: vipPath(vip.protocol, vip.address, vip.port), payload: { forwarding: 'ipip' } }))
        .statusCode,
    ).toBe(201);
    const writes = fc.sample(
      fc.record({
        backend: fc.constantFrom('198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14', '2001:db8::11'),
        weight: fc.integer({ min: 0, max: 3 }),
        state: fc.constantFrom('active', 'drain'),
        remove: fc.boolean(),
      }),
      { numRuns: 80, seed: 7 },
    );
    const answers = await Promise.all(
      writes.map((w) =>
        d.app.inject(
          w.remove
            ? { method: 'DELETE', url: vipPath(vip.protocol, vip.address, vip.port, w.backend) }
            : {
                method: 'PUT',
                url: vipPath(vip.protocol, vip.address, vip.port, w.backend),
                payload: { weight: w.weight, state: w.state },
              },
        ),
      ),
    );
    for (const a of answers) expect([200, 201, 204, 404]).toContain(a.statusCode);

    const stored = d.controller.storedVip({ protocol: 'tcp', address: vip.address, port: vip.port })!;
    const serving = new Set(stored.backends.filter((b) => b.state === 'active' && b.weight > 0).map((b) => b.id));
    const ring = d.dp.getRing(stored.id);
    expect(new Set(ring ?? [])).toEqual(serving);
  });
});
