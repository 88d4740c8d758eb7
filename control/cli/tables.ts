/** The CLI's tables of the API's views; endpoints as `tcp/[2001:db8::10]:53`. */
import type { BackendView, StatsView, VipView } from '../controller/views.js';
import { vipKeyText } from '../state/schema.js';
import { durationText } from './arguments.js';
import { formatBytes, formatRate, table } from './format.js';

/** A VIP named by the command line's arguments, for messages. */
export const vipArgumentsText = (protocol: string, address: string, port: string) => vipKeyText({ protocol, address, port: Number(port) });

export function vipTable(vips: VipView[]): string {
  return table(
    ['VIP', 'FORWARDING', 'AFFINITY', 'CHECK', 'BACKENDS', 'IN RING', 'PANIC'],
    vips.map((v) => [
      vipKeyText(v),
      v.forwarding,
      v.affinity,
      v.healthCheck.type,
      String(v.backends.length),
      String(v.ringBackends),
      v.panic ? 'yes' : 'no',
    ]),
  );
}

/** When the last check finished, before `now`, and how long it took: `3s ago, 2ms`. */
function lastCheck(backend: BackendView, now: number): string {
  if (backend.lastCheckAt === null) return '-';
  const age = Math.max(0, now - Date.parse(backend.lastCheckAt));
  const ago = `${durationText(Math.round(age / 1000) * 1000)} ago`;
  if (backend.lastCheckMs === null) return ago;
  return `${ago}, ${backend.lastCheckMs < 10 ? backend.lastCheckMs.toFixed(1) : Math.round(backend.lastCheckMs)}ms`;
}

/** A VIP's backends, under a line saying so when the VIP is in panic mode. */
export function backendTable(vip: VipView, now = Date.now()): string {
  const threshold = `${Number((vip.panicThreshold * 100).toFixed(1))}%`;
  const panic = vip.panic
    ? `${vipKeyText(vip)} is in panic mode: under ${threshold} of its backends are healthy, so every non-drained backend serves\n`
    : '';
  return (
    panic +
    table(
      ['BACKEND', 'WEIGHT', 'STATE', 'HEALTH', 'LAST CHECK', 'VIA', 'IN RING', 'SLOTS', 'MAC', 'REASON'],
      vip.backends.map((b) => [
        b.address,
        String(b.weight),
        b.state,
        b.healthReason === null ? b.health : `${b.health} (${b.healthReason})`,
        lastCheck(b, now),
        b.via,
        b.inRing ? 'yes' : 'no',
        String(b.slots),
        b.mac ?? '-',
        b.reason ?? '',
      ]),
    )
  );
}

export function statsTable(stats: StatsView): string {
  const rows: string[][] = [];
  for (const v of stats.vips) {
    rows.push([
      vipKeyText(v),
      '',
      String(v.packets),
      formatBytes(v.bytes),
      formatRate(v.packetsPerSecond, 'pps'),
      formatRate(v.bytesPerSecond * 8, 'bps'),
    ]);
    for (const b of v.backends) {
      const share = v.packets ? `${((100 * b.packets) / v.packets).toFixed(1)}%` : '-';
      rows.push([
        `  ${b.address}`,
        share,
        String(b.packets),
        formatBytes(b.bytes),
        formatRate(b.packetsPerSecond, 'pps'),
        formatRate(b.bytesPerSecond * 8, 'bps'),
      ]);
    }
  }
  const outcomes = Object.entries(stats.outcomes).filter(([, o]) => o.packets > 0);
  return [
    table(['VIP / BACKEND', 'SHARE', 'PACKETS', 'BYTES', 'RATE', 'THROUGHPUT'], rows),
    '',
    floodLine(stats.flood),
    flowTableText(stats.flowTable),
    '',
    outcomes.length
      ? table(
          ['OUTCOME', 'PACKETS', 'BYTES'],
          outcomes.map(([name, o]) => [name, String(o.packets), formatBytes(o.bytes)]),
        )
      : 'OUTCOME: no packet handled yet',
  ].join('\n');
}

/** Whether new flows come at a flood rate over all CPUs, and each CPU's new flows per second now. */
function floodLine(flood: StatsView['flood']): string {
  const now = `new flows per CPU now: ${flood.newFlowsPerSecond.map((rate) => formatRate(rate, '/s')).join(', ') || '-'}`;
  const threshold = `threshold ${formatRate(flood.threshold, '/s')} over all CPUs`;
  if (!flood.active) return `FLOOD: none (${threshold}; ${now})`;
  return `FLOOD: since ${flood.since}, peak ${formatRate(flood.peakPerSecond ?? 0, '/s')} (${threshold}; ${now})`;
}

/** The connection table's entries and the entries new flows evicted, by state. */
function flowTableText(flowTable: StatsView['flowTable']): string {
  const { states, evictions } = flowTable;
  return [
    `FLOW TABLE: ${flowTable.flows} flows in ${flowTable.slots} slots; ${flowTable.unrecorded} packets of new flows found no entry`,
    table(
      ['', 'NEW', 'ESTABLISHED', 'CLOSING'],
      [
        ['entries', String(states.new), String(states.established), String(states.closing)],
        ['evicted', String(evictions.new), String(evictions.established), String(evictions.closing)],
      ],
    ),
  ].join('\n');
}
