/**
 * The connection table's clock (xlb_config.clock): seconds the daemons have run. Each
 * daemon carries on from the clock the table's config holds, so a flow's idle time
 * counts only time a daemon ran: one stopped for a while (or for good) ages no flow,
 * and its successor does not find every entry idle for the time it was away. An
 * established flow idle for --flow-idle-timeout seconds by it may give its entry to
 * a new flow.
 */
import type { DataplanePort } from '../dataplane/port.js';

const TICK_MS = 1000;

/** Ticks the clock every second until closed, from where the table's config has it. */
export function startFlowClock(dp: Pick<DataplanePort, 'setClock' | 'clock'>, onError: (error: unknown) => void): { close(): void } {
  let seconds = dp.clock();
  const timer = setInterval(() => {
    try {
      dp.setClock(++seconds);
    } catch (error) {
      onError(error);
    }
  }, TICK_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
