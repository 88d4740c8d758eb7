/** The connection table's clock: seconds the daemons have run, each carrying on from the last. */
import { afterEach, expect, test, vi } from 'vitest';
import { startFlowClock } from '../../control/daemon/flow-clock.js';
import { DataplaneModel } from '../lib/dataplane-model.js';

afterEach(() => vi.useRealTimers());

test('ticks once a second from the clock the table holds, so a daemon away for a while ages no flow', () => {
  vi.useFakeTimers();
  const dp = new DataplaneModel();
  dp.setClock(5000); // where the last daemon left it
  const first = startFlowClock(dp, (error) => expect.unreachable(String(error)));
  expect(dp.clock()).toBe(5000);
  vi.advanceTimersByTime(3000);
  expect(dp.clock()).toBe(5003);
  first.close();
  vi.advanceTimersByTime(60_000); // no daemon: no time passes for the flows
  expect(dp.clock()).toBe(5003);
  const second = startFlowClock(dp, (error) => expect.unreachable(String(error)));
  vi.advanceTimersByTime(1000);
  expect(dp.clock()).toBe(5004);
  second.close();
});

test('wraps at 24 bits, as the data plane compares', () => {
  vi.useFakeTimers();
  const dp = new DataplaneModel();
  dp.setClock(2 ** 24 - 1);
  const clock = startFlowClock(dp, (error) => expect.unreachable(String(error)));
  vi.advanceTimersByTime(2000);
  expect(dp.clock()).toBe(1);
  clock.close();
});
