/**
 * The connection table's clock (xlb_config.clock): seconds of CLOCK_MONOTONIC, the
 * clock bpf_ktime_get_ns reads, so a restarted daemon carries on where the last one
 * stopped. The balancer stamps each entry with it; an established flow idle for
 * --flow-idle-timeout seconds by it may give its entry to a new flow.
 */
import type { DataplanePort } from '../dataplane/port.js';

const TICK_MS = 1000;

export const monotonicSeconds = () => Number(process.hrtime.bigint() / 1_000_000_000n);

/** Sets the clock now and every second until closed. */
export function startFlowClock(dp: Pick<DataplanePort, 'setClock'>, onError: (error: unknown) => void): { close(): void } {
  const tick = () => {
    try {
      dp.setClock(monotonicSeconds());
    } catch (error) {
      onError(error);
    }
  };
  tick();
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
