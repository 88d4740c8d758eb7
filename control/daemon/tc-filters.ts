/**
 * The filters on an interface's clsact hooks, as `tc -j filter show` lists them: for the
 * start warning when another egress filter runs before xlb's, and for `xlb down`, which
 * removes the clsact qdisc once no filter is left on it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ifNameToIndex, tcHookDestroy, tcPriority } from '@xlb/native';

const execFileAsync = promisify(execFile);

export type TcHook = 'ingress' | 'egress';

export interface TcFilter {
  hook: TcHook;
  pref: number;
  kind: string;
  chain: number;
}

interface TcFilterRow {
  pref?: number;
  kind?: string;
  chain?: number;
}

/** One filter per hook, chain and preference: tc lists a filter's header and each of its handles as rows of their own. */
export function parseTcFilters(hook: TcHook, json: string): TcFilter[] {
  const rows = JSON.parse(json || '[]') as TcFilterRow[];
  const filters = new Map<string, TcFilter>();
  for (const { pref, kind, chain = 0 } of rows) {
    if (pref === undefined || kind === undefined) continue;
    filters.set(`${chain} ${pref}`, { hook, pref, kind, chain });
  }
  return [...filters.values()];
}

export async function tcFilters(iface: string, hook: TcHook): Promise<TcFilter[]> {
  const { stdout } = await execFileAsync('tc', ['-j', 'filter', 'show', 'dev', iface, hook]);
  return parseTcFilters(hook, stdout);
}

const filterText = (filter: TcFilter) =>
  `${filter.hook} pref ${filter.pref} ${filter.kind}${filter.chain ? ` (chain ${filter.chain})` : ''}`;

/** The egress filters that classify a packet before xlb's, as a warning; null when xlb's comes first. */
export function egressOrderWarning(iface: string, egress: readonly TcFilter[]): string | null {
  const before = egress.filter((filter) => filter.chain === 0 && filter.pref < tcPriority);
  if (before.length === 0) return null;
  return (
    `${iface} has tc egress filters before xlb's (pref ${tcPriority}): ${before.map(filterText).join(', ')}; ` +
    'one that returns a verdict ends classification there, and a via-vip health-check probe it passes ' +
    'never reaches xlb_probe, so its backend fails the check'
  );
}

/** The start warning about filters before xlb's on egress; a listing that fails is a warning too. */
export function probeFilterOrderWarning(iface: string): Promise<string | null> {
  return tcFilters(iface, 'egress').then(
    (egress) => egressOrderWarning(iface, egress),
    (error: Error) => `${iface}: could not list the tc egress filters to see whether one runs before xlb's: ${error.message}`,
  );
}

/**
 * Removes the interface's clsact qdisc when no filter is left on either of its hooks,
 * whoever made it: an empty one changes no packet, and xlb cannot tell its own from an
 * operator's (an earlier daemon, or the link watch, may have made it). Returns the
 * filters that keep it ([] when it was removed or there was none).
 */
export async function removeUnusedClsact(iface: string): Promise<{ removed: boolean; kept: TcFilter[] }> {
  const kept = [...(await tcFilters(iface, 'ingress')), ...(await tcFilters(iface, 'egress'))];
  if (kept.length > 0) return { removed: false, kept };
  return { removed: tcHookDestroy(ifNameToIndex(iface)), kept };
}

/** What `xlb down` did with the clsact qdisc, for its one line of output ('' when there was none). */
export function clsactText(iface: string, clsact: { removed: boolean; kept: readonly TcFilter[] }): string {
  if (clsact.removed) return `; removed the clsact qdisc on ${iface}`;
  if (clsact.kept.length === 0) return '';
  return `; the clsact qdisc on ${iface} stays for its other filters (${clsact.kept.map(filterText).join(', ')})`;
}
