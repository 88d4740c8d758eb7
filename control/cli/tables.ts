/** The CLI's tables of the API's views. */
import type { StatsView, VipView } from '../controller/views.js';
import { formatBytes, formatRate, table } from './format.js';

export function vipTable(vips: VipView[]): string {
  return table(
    ['VIP', 'FORWARDING', 'AFFINITY', 'CHECK', 'BACKENDS', 'IN RING', 'PANIC'],
    vips.map((v) => [
      `${v.protocol}/${v.address}:${v.port}`,
      v.forwarding,
      v.affinity,
      v.healthCheck.type,
      String(v.backends.length),
      String(v.ringBackends),
      v.panic ? 'yes' : 'no',
    ]),
  );
}

export function backendTable(vip: VipView): string {
  return table(
    ['BACKEND', 'WEIGHT', 'STATE', 'HEALTH', 'IN RING', 'SLOTS', 'MAC', 'REASON'],
    vip.backends.map((b) => [
      b.address,
      String(b.weight),
      b.state,
      b.health,
      b.inRing ? 'yes' : 'no',
      String(b.slots),
      b.mac ?? '-',
      b.reason ?? b.healthReason ?? '',
    ]),
  );
}

export function statsTable(stats: StatsView): string {
  const rows: string[][] = [];
  for (const v of stats.vips) {
    rows.push([
      `${v.protocol}/${v.address}:${v.port}`,
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
  return table(['VIP / BACKEND', 'SHARE', 'PACKETS', 'BYTES', 'RATE', 'THROUGHPUT'], rows);
}
