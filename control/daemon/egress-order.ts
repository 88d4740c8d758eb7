/**
 * Whether xlb's egress filter is the first to classify a packet leaving the XDP
 * interface. tc runs chain 0 only (other chains by a goto only), by ascending preference,
 * and within one preference in the order of its filter's list: cls_bpf puts a new handle
 * first, so a bpf filter added at xlb's preference after xlb's runs before it. `tc filter
 * show` lists them in that order. A filter ahead of xlb's that ends classification
 * (drops, or passes a probe unchanged) keeps via-vip probes from xlb_probe. So does a
 * program at the interface's tcx egress hook: tcx runs before every clsact filter.
 */
import type { TcxProgram } from '@xlb/native';
import { setEgressFilterAhead } from '../checks/egress-ahead.js';
import type { TcFilterRow } from './tc-filters.js';

/**
 * Every this many link checks (one a second) the egress filters are listed: a `tc`
 * process each, so not every check. The tcx programs, one syscall, are queried on every check.
 */
export const EGRESS_ORDER_EVERY_CHECKS = 5;

const rowKey = (row: TcFilterRow) => `${row.pref} ${row.kind}`;

function rowText({ pref, kind, protocol, options }: TcFilterRow): string {
  const parts = [`pref ${pref}`, `${kind}`];
  if (protocol !== undefined && protocol !== 'all') parts.push(`protocol ${protocol}`);
  if (options?.handle !== undefined) parts.push(`handle ${options.handle}`);
  if (options?.prog?.name !== undefined) parts.push(`program ${options.prog.name}`);
  return parts.join(', ');
}

/** xlb's egress filter: its preference (tcPriority) and the id of the program it runs. */
export interface OurEgressFilter {
  pref: number;
  programId: number;
}

/**
 * The filters `tc -j filter show` lists in chain 0 before xlb's, each as text ("pref 1,
 * u32, protocol ip"), in the order they run; [] when xlb's runs first or is not there
 * (the link watch reports that).
 */
export function filtersAhead(rows: readonly TcFilterRow[], ours: OurEgressFilter): string[] {
  const chain0 = rows.filter((row) => (row.chain ?? 0) === 0 && row.pref !== undefined && row.kind !== undefined);
  const at = chain0.findIndex((row) => row.pref === ours.pref && row.options?.prog?.id === ours.programId);
  if (at < 0) return [];
  // A header row (no options) stands for its filter only when no row of it names a handle: u32's rows name none, bpf's do.
  const withHandles = new Set(chain0.filter((row) => row.options?.handle !== undefined).map(rowKey));
  const ahead = chain0.slice(0, at).filter((row) => row.options !== undefined || !withHandles.has(rowKey(row)));
  return [...new Set(ahead.map(rowText))];
}

const tcxText = ({ id, name }: TcxProgram) => (name === '' ? `id ${id}` : `id ${id}, name ${name}`);
/** "an egress filter (pref 1, u32)", or "egress filters (pref 1, u32; pref 2, u32)". */
const listed = (items: readonly string[], one: string, many: string) =>
  items.length === 1 ? `${one} (${items[0]})` : `${many} (${items.join('; ')})`;

/** What runs before xlb's egress filter: the tcx egress programs, then the tc filters listed before it. */
export interface EgressAhead {
  tcx: readonly TcxProgram[];
  filters: readonly string[];
}

/** The warning (and via-vip failure reason) for what runs ahead of xlb's filter; null for nothing. */
export function egressAheadText(iface: string, { tcx, filters }: EgressAhead, ours: OurEgressFilter): string | null {
  const which: string[] = [];
  if (tcx.length > 0) which.push(listed(tcx.map(tcxText), 'a tcx egress program', 'tcx egress programs'));
  if (filters.length > 0) which.push(listed(filters, 'an egress filter', 'egress filters'));
  if (which.length === 0) return null;
  const run = tcx.length + filters.length === 1 ? 'runs' : 'run';
  const ways = [
    ...(tcx.length > 0 ? ['tcx programs run before every tc filter'] : []),
    ...(filters.length > 0 ? [`a filter at a preference above ${ours.pref} runs after xlb's`] : []),
  ];
  return `${which.join(' and ')} ${run} before xlb_probe on ${iface}: probes may not reach it; ${ways.join('; ')}`;
}

/**
 * Queries the interface's tcx egress programs on every tick and lists its egress filters
 * on every EGRESS_ORDER_EVERY_CHECKS-th, one listing at a time, and keeps what runs ahead
 * of xlb's: the caller reads `ahead` after each tick, `changed` hears when a listing
 * changes it, and via-vip failure reasons read it (checks/egress-ahead.ts).
 */
export class EgressOrder {
  private ticks = 0;
  private listing = false;
  private found: EgressAhead = { tcx: [], filters: [] };
  private text: string | null = null;
  private closed = false;

  constructor(
    private readonly list: (iface: string) => Promise<TcFilterRow[]>,
    private readonly tcxPrograms: (ifindex: number) => TcxProgram[],
    private readonly changed: () => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** What runs ahead of xlb's egress filter, as the last listing found; null for nothing. */
  get ahead(): string | null {
    return this.text;
  }

  tick(iface: string, ifindex: number, ours: OurEgressFilter): void {
    try {
      this.update(iface, { ...this.found, tcx: this.tcxPrograms(ifindex) }, ours);
    } catch (error) {
      this.onError(error);
    }
    if (this.ticks++ % EGRESS_ORDER_EVERY_CHECKS !== 0 || this.listing) return;
    this.listing = true;
    this.list(iface)
      .then((rows) => {
        if (!this.closed && this.update(iface, { ...this.found, filters: filtersAhead(rows, ours) }, ours)) this.changed();
      }, this.onError)
      .finally(() => (this.listing = false));
  }

  close(): void {
    this.closed = true;
    setEgressFilterAhead(null);
  }

  /** Keeps what was found ahead; true when its text changed. */
  private update(iface: string, found: EgressAhead, ours: OurEgressFilter): boolean {
    this.found = found;
    const text = egressAheadText(iface, found, ours);
    if (text === this.text) return false;
    this.text = text;
    setEgressFilterAhead(text);
    return true;
  }
}
