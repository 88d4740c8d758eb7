/**
 * The filters on an interface's clsact hooks, as `tc -j filter show` lists them: for the
 * link watch, which checks that xlb's egress filter runs first (egress-order.ts), and
 * for `xlb down`, which removes the clsact qdisc once no filter is left on it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ifNameToIndex, tcHookDestroy } from '@xlb/native';

const execFileAsync = promisify(execFile);

export type TcHook = 'ingress' | 'egress';

export interface TcFilter {
  hook: TcHook;
  pref: number;
  kind: string;
  chain: number;
}

/** One row of `tc -j filter show`, in the order tc lists them: the order they classify in. */
export interface TcFilterRow {
  pref?: number;
  kind?: string;
  chain?: number;
  protocol?: string;
  /** Absent on a filter's header row; `handle` for kinds with one (bpf), `prog` for bpf. */
  options?: { handle?: string; prog?: { id?: number; name?: string } };
}

export async function tcFilterRows(iface: string, hook: TcHook): Promise<TcFilterRow[]> {
  const { stdout } = await execFileAsync('tc', ['-j', 'filter', 'show', 'dev', iface, hook]);
  return JSON.parse(stdout || '[]') as TcFilterRow[];
}

/** One filter per hook, chain and preference: tc lists a filter's header and each of its handles as rows of their own. */
export async function tcFilters(iface: string, hook: TcHook): Promise<TcFilter[]> {
  const filters = new Map<string, TcFilter>();
  for (const { pref, kind, chain = 0 } of await tcFilterRows(iface, hook)) {
    if (pref === undefined || kind === undefined) continue;
    filters.set(`${chain} ${pref}`, { hook, pref, kind, chain });
  }
  return [...filters.values()];
}

const filterText = (filter: TcFilter) =>
  `${filter.hook} pref ${filter.pref} ${filter.kind}${filter.chain ? ` (chain ${filter.chain})` : ''}`;

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
