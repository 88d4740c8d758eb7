/**
 * How the dashboard writes numbers, times and check settings. The page's script embeds
 * these functions' source (each is self-contained), and the browser test expects the
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

/** A per-second rate with an SI prefix and three significant digits: "0 pkt/s", "12.3 kbit/s". */
export function formatRate(perSecond: number, unit: string): string {
  if (perSecond < 1000) return (perSecond < 10 ? Math.round(perSecond * 10) / 10 : Math.round(perSecond)) + ' ' + unit;
  const prefixes = ['k', 'M', 'G', 'T', 'P'];
  let scaled = perSecond / 1000;
  let prefix = 0;
  while (scaled >= 999.5 && prefix < prefixes.length - 1) {
    scaled /= 1000;
    prefix++;
  }
  return scaled.toPrecision(3) + ' ' + prefixes[prefix] + unit;
}

/** A byte count with a binary prefix and three significant digits: "512 B", "1.50 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return Math.round(bytes) + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let scaled = bytes / 1024;
  let unit = 0;
  while (scaled >= 1023.5 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return scaled.toPrecision(3) + ' ' + units[unit];
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

/** A VIP's health check with its defaults filled in: "tcp port 80, every 2000 ms, timeout 1000 ms, rise 2, fall 3". */
export function formatCheck(check: { type: string } & Record<string, unknown>, vipPort: number, defaults: Record<string, number>): string {
  if (check.type === 'none') return 'none';
  const { type, port, intervalMs, timeoutMs, rise, fall, ...options } = { ...defaults, ...check };
  const extra = Object.entries(options).map(([name, value]) => ', ' + name + ' ' + JSON.stringify(value));
  return (
    type +
    ' port ' +
    (port ?? vipPort) +
    ', every ' +
    intervalMs +
    ' ms, timeout ' +
    timeoutMs +
    ' ms, rise ' +
    rise +
    ', fall ' +
    fall +
    extra.join('')
  );
}

/** Every function above, for the page's script. */
export const formatters = [formatCount, formatRate, formatBytes, formatDuration, formatClock, formatLatency, formatCheck];
