/**
 * Whether xlb's egress filter is the first to classify a packet leaving the XDP
 * interface. tc runs chain 0 only (other chains by a goto only), by ascending preference,
 * and within one preference in the order of its filter's list: cls_bpf puts a new handle
 * first, so a bpf filter added at xlb's preference after xlb's runs before it. `tc filter
 * show` lists them in that order. A filter ahead of xlb's that ends classification
 * (drops, or passes a probe unchanged) keeps via-vip probes from xlb_probe.
 */
import { setEgressFilterAhead } from '../checks/egress-ahead.js';
import type { TcFilterRow } from './tc-filters.js';

/** Every this many link checks (one a second) the egress filters are listed: a `tc` process each, so not every check. */
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

/** The warning (and via-vip failure reason) for the filters ahead of xlb's; null for none. */
export function egressAheadText(iface: string, ahead: readonly string[], ours: OurEgressFilter): string | null {
  if (ahead.length === 0) return null;
  const which = ahead.length === 1 ? `an egress filter (${ahead[0]}) runs` : `egress filters (${ahead.join('; ')}) run`;
  return `${which} before xlb_probe on ${iface}: probes may not reach it; a filter at a preference above ${ours.pref} runs after xlb's`;
}

/**
 * Lists the interface's egress filters on every EGRESS_ORDER_EVERY_CHECKS-th tick, one
 * listing at a time, and keeps what runs ahead of xlb's: `changed` hears when that
 * changes, and via-vip failure reasons read it (checks/egress-ahead.ts).
 */
export class EgressOrder {
  private ticks = 0;
  private listing = false;
  private text: string | null = null;
  private closed = false;

  constructor(
    private readonly list: (iface: string) => Promise<TcFilterRow[]>,
    private readonly changed: () => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** What runs ahead of xlb's egress filter, as the last listing found; null for nothing. */
  get ahead(): string | null {
    return this.text;
  }

  tick(iface: string, ours: OurEgressFilter): void {
    if (this.ticks++ % EGRESS_ORDER_EVERY_CHECKS !== 0 || this.listing) return;
    this.listing = true;
    this.list(iface)
      .then((rows) => {
        const text = egressAheadText(iface, filtersAhead(rows, ours), ours);
        if (text === this.text || this.closed) return;
        this.text = text;
        setEgressFilterAhead(text);
        this.changed();
      }, this.onError)
      .finally(() => (this.listing = false));
  }

  close(): void {
    this.closed = true;
    setEgressFilterAhead(null);
  }
}
