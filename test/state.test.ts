/** The desired state's file form: saved from per-VIP pieces that must never go stale. */
import { expect, test } from 'vitest';
import { deleteBackend, deleteVip, emptyState, putBackend, putVip } from '../control/state/desired.js';
import { backendSpecSchema, type VipKey, vipSpecSchema } from '../control/state/schema.js';
import { stateText } from '../control/state/store.js';

const limits = { maxVips: 16, maxBackends: 64 };
const key = (n: number): VipKey => ({ protocol: 'tcp', address: `198.19.0.${n}`, port: 80 });

test('the saved text is JSON.stringify of the state after every kind of change', () => {
  let state = emptyState();
  const check = () => expect(stateText(state)).toBe(JSON.stringify(state));
  check();
  for (const n of [1, 2, 3]) {
    state = putVip(state, key(n), vipSpecSchema.parse({ forwarding: 'dsr' }), limits).state;
    check();
  }
  for (const b of [1, 2]) {
    state = putBackend(state, key(2), `198.18.0.${b}`, backendSpecSchema.parse({}), limits).state;
    check();
  }
  state = putBackend(state, key(2), '198.18.0.1', backendSpecSchema.parse({ weight: 5, state: 'drain' }), limits).state;
  check();
  state = putVip(state, key(3), vipSpecSchema.parse({ forwarding: 'ipip' }), limits).state;
  check();
  state = deleteBackend(state, key(2), '198.18.0.2');
  check();
  state = deleteVip(state, key(1));
  check();
  expect(JSON.parse(stateText(state)).vips.map((v: { address: string }) => v.address)).toEqual(['198.19.0.2', '198.19.0.3']);
});
