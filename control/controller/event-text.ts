/** An event in one readable line: the daemon's log message for it, and `xlb events` without --json. */
import { vipKeyText } from '../state/schema.js';
import type { ClientIdentity, ConfigFields, EventGap, RecordedEvent } from './views.js';

const value = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
const fields = (record: ConfigFields) =>
  Object.entries(record)
    .map(([field, v]) => `${field}=${value(v)}`)
    .join(' ');

function changes(before: ConfigFields | null, after: ConfigFields | null): string {
  if (!before) return after ? `created ${fields(after)}` : 'unchanged';
  if (!after) return `removed ${fields(before)}`;
  const changed = Object.keys(after).map((field) => `${field} ${value(before[field])} -> ${value(after[field])}`);
  return changed.length ? changed.join(', ') : 'unchanged';
}

const perSecond = (rate: number) => `${rate}/s`;

const client = (by: ClientIdentity | null) => (by ? ` (by ${by.peer}${by.token ? ` token ${by.token}` : ''})` : '');

export function eventText(event: RecordedEvent | EventGap): string {
  switch (event.type) {
    case 'config':
      if (event.action === 'sync') return `config sync: revision ${event.revision} from the store`;
      return (
        `config ${event.action} ${vipKeyText(event.vip)}${event.backend === undefined ? '' : ` backend ${event.backend}`}: ` +
        `${changes(event.before, event.after)}${client(event.by)}`
      );
    case 'health':
      return (
        `health ${vipKeyText(event.vip)} backend ${event.backend}: ${event.from} -> ${event.to}` +
        ` (${event.reason ?? `check via ${event.via} passed`}; check ${Math.round(event.latencyMs * 10) / 10} ms)`
      );
    case 'link':
      if (event.sources) return `sources follow ${event.iface}: IPv4 ${event.sources.v4 ?? 'none'}, IPv6 ${event.sources.v6 ?? 'none'}`;
      if (event.attached) return `attached to ${event.iface}${event.reason ? `: ${event.reason}` : ''}`;
      return `not attached to ${event.iface}: ${event.reason ?? 'unknown'}`;
    case 'start':
      return (
        `starting xlb ${event.version} on ${event.iface}: restored ${event.vips} VIPs and ${event.backends} backends from the ${event.store}; ` +
        `pinned maps: ${event.pins.adopted.length} adopted, ${event.pins.created.length} made anew`
      );
    case 'shutdown':
      return `shutting down: ${event.reason}`;
    case 'flood':
      return event.active
        ? `flood: new flows at ${perSecond(event.peakPerSecond)} over all CPUs, over the threshold of ${perSecond(event.threshold)} ` +
            `(per CPU now: ${event.newFlowsPerSecond.join(', ')})`
        : `flood over after ${event.durationSeconds} s: ${event.newFlows} new flows, at most ${perSecond(event.peakPerSecond)} ` +
            `over all CPUs (threshold ${perSecond(event.threshold)})`;
    case 'gap':
      return event.reason === 'evicted'
        ? `events ${event.since + 1} to ${event.next - 1} are no longer kept`
        : `the daemon restarted: events after ${event.since} are gone, ids begin again`;
  }
}
