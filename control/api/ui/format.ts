/**
 * How the dashboard writes numbers, times and check settings. The page's script embeds
 * these functions' source (they call only each other), and the browser test expects the
 * page's text from the API's answers through the same functions.
 */
import { z } from 'zod';
import { checkTimingShape } from '../../checks/check-type.js';

/** The timing every probing check has when its VIP does not set it. */
export const CHECK_DEFAULTS = z.object(checkTimingShape).parse({});

/** A count with thousands separators. */
export function formatCount(count: number): string {
  return Math.round(count).toLocaleString('en-US');
}

/** A value in the first of `units` (each `base` times the one before) that keeps it under 1000: "7.5 B", "12.3 kB". */
export function formatScaled(value: number, base: number, units: string[]): string {
  let scaled = value;
  let unit = 0;
  while (scaled >= 999.5 && unit < units.length - 1) {
    scaled /= base;
    unit++;
  }
  const digits = unit === 0 ? String(scaled < 10 ? Math.round(scaled * 10) / 10 : Math.round(scaled)) : scaled.toPrecision(3);
  return `${digits} ${units[unit] ?? ''}`;
}

/** A per-second rate with an SI prefix: "0 pkt/s", "12.3 kbit/s". */
export function formatRate(perSecond: number, unit: string): string {
  return formatScaled(
    perSecond,
    1000,
    ['', 'k', 'M', 'G', 'T', 'P'].map((prefix) => prefix + unit),
  );
}

/** A byte count with a binary prefix: "512 B", "1.50 MiB". */
export function formatBytes(bytes: number): string {
  return formatScaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
}

/** A duration in its two largest units: "42s", "5m 03s", "2h 05m", "3d 04h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + two(s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + two(Math.floor(s / 60) % 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + two(Math.floor(s / 3600) % 24) + 'h';
}

/** When a check finished, as local time of day, or "never". */
export function formatClock(iso: string | null): string {
  return iso === null ? 'never' : new Date(iso).toLocaleTimeString('en-GB', { hour12: false });
}

/** How long a check took: "0.4 ms", "12 ms", or "–" before the first. */
export function formatLatency(ms: number | null): string {
  if (ms === null) return '–';
  return (ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms)) + ' ms';
}

/** A VIP's health check with its defaults filled in: "tcp port 80 via vip, every 2000 ms, timeout 1000 ms, rise 2, fall 3". */
export function formatCheck(check: { type: string } & Record<string, unknown>, vipPort: number, defaults: Record<string, number>): string {
  if (check.type === 'none') return 'none';
  const { type, port, via, intervalMs, timeoutMs, rise, fall, ...options } = { ...defaults, ...check };
  const settings = [
    `${type} port ${String(port ?? vipPort)}${via === undefined ? '' : ` via ${String(via)}`}`,
    `every ${String(intervalMs)} ms`,
    `timeout ${String(timeoutMs)} ms`,
    `rise ${String(rise)}`,
    `fall ${String(fall)}`,
  ];
  return [...settings, ...Object.entries(options).map(([name, value]) => `${name} ${JSON.stringify(value)}`)].join(', ');
}

/** The path a backend's check takes: "via vip", "direct", or nothing when its VIP's check does not probe. */
export function formatVia(via: string): string {
  return via === 'none' ? '' : via === 'direct' ? 'direct' : 'via ' + via;
}

/** A VIP's forwarding settings in a line. */
export function formatVipSettings(v: { forwarding: string; affinity: string; conntrack: boolean; panicThreshold: number }): string {
  return `${v.forwarding}, affinity ${v.affinity}${v.conntrack ? '' : ', no conntrack'}, panic under ${Math.round(v.panicThreshold * 100)}% healthy`;
}

/** A part of a whole in percent, to a tenth: "0.4%". */
export function formatShare(part: number, whole: number): string {
  return `${whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0}%`;
}

/** Each CPU's new flows per second: "12 flows/s, 1.20 kflows/s", or "–" before the first window. */
export function formatPerCpu(rates: number[]): string {
  return rates.map((rate) => formatRate(rate, 'flows/s')).join(', ') || '–';
}

/** The flood banner: "flood since 21:41:10: up to 1.81 Mflows/s new over all CPUs (threshold 125 kflows/s)"; "" when none. */
export function formatFlood(flood: { active: boolean; since: string | null; threshold: number; peakPerSecond: number | null }): string {
  if (!flood.active) return '';
  const peak = formatRate(flood.peakPerSecond ?? 0, 'flows/s');
  return `flood since ${formatClock(flood.since)}: up to ${peak} new over all CPUs (threshold ${formatRate(flood.threshold, 'flows/s')})`;
}

/** Every function above, for the page's script. */
export const formatters = [
  formatScaled,
  formatCount,
  formatRate,
  formatBytes,
  formatDuration,
  formatClock,
  formatLatency,
  formatCheck,
  formatVia,
  formatVipSettings,
  formatShare,
  formatPerCpu,
  formatFlood,
];
