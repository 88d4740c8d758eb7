/**
 * xlb_probes_v1 held to what the health checks want: entries are written when checks
 * change, and one emptied or altered from outside the daemon (bpftool, another
 * process) would send its probes nowhere or to another backend until the next change.
 */
import type { DataplanePort } from '../dataplane/port.js';
import { probeDifferencesText } from '../dataplane/probes.js';
import type { InternalErrors } from './internal-errors.js';

/** How often the entries are read back and compared: each costs two syscalls, so a large map is not re-read every second. */
export const PROBE_REPAIR_MS = 2000;

/** Rewrites the entries that differ; a repair is counted as a data-plane internal error naming them. */
export function repairProbeEntries(dp: Pick<DataplanePort, 'repairProbes'>, errors: InternalErrors): void {
  const differences = dp.repairProbes();
  if (differences.length === 0) return;
  const message = `xlb_probes_v1 differed from the health checks' probe entries and was rewritten: ${probeDifferencesText(differences)}`;
  errors.record('dataplane', new Error(message), { op: 'repair probe entries', entries: differences.length });
}
