/** The dashboard's flood banner and per-CPU rates as its formatters word them. */
import { expect, test } from 'vitest';
import { formatFlood, formatPerCpu } from '../../control/api/ui/format.js';

test('the banner names the flood, its start and peak, and is empty without one', () => {
  const flood = { active: true, since: '2026-12-02T21:41:10.000Z', threshold: 125000, peakPerSecond: 1811907 };
  const clock = new Date(flood.since).toLocaleTimeString('en-GB', { hour12: false });
  expect(formatFlood(flood)).toBe(`flood since ${clock}: up to 1.81 Mflows/s new over all CPUs (threshold 125 kflows/s)`);
  expect(formatFlood({ ...flood, active: false, since: null, peakPerSecond: null })).toBe('');
  expect(formatPerCpu([12, 1200])).toBe('12 flows/s, 1.20 kflows/s');
  expect(formatPerCpu([])).toBe('–');
});
