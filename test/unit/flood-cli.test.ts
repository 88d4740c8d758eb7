/** `xlb stats` without --json: the flood line and the connection table by state; `xlb serve --flood-threshold`. */
import { expect, test } from 'vitest';
import { statsExample } from '../../control/api/examples.js';
import { statsTable } from '../../control/cli/tables.js';
import { resolveServeOptions } from '../../control/daemon/options.js';

test('xlb stats prints whether a flood is on, the new flows per CPU and the table by state', () => {
  const calm = statsTable(statsExample).split('\n');
  expect(calm).toContain('FLOOD: none (threshold 125.0k/s over all CPUs; new flows per CPU now: 7/s, 5/s)');
  expect(calm).toContain('FLOW TABLE: 13209 flows in 1048576 slots; 0 packets of new flows found no entry');
  expect(calm.map((line) => line.split(/\s+/).join(' '))).toEqual(
    expect.arrayContaining([' NEW ESTABLISHED CLOSING', 'entries 212 12861 136', 'evicted 8804 0 3117']),
  );
  const flood = {
    active: true,
    since: '2026-12-02T21:41:10.000Z',
    threshold: 125000,
    peakPerSecond: 1811907,
    newFlowsPerSecond: [1.7e6, 9e4],
  };
  expect(statsTable({ ...statsExample, flood }).split('\n')).toContain(
    'FLOOD: since 2026-12-02T21:41:10.000Z, peak 1.8M/s (threshold 125.0k/s over all CPUs; new flows per CPU now: 1.7M/s, 90.0k/s)',
  );
});

test('xlb serve --flood-threshold: a positive whole number, 125000 by default; a bad one names the flag', () => {
  expect(resolveServeOptions({ iface: 'eth0' }).floodThreshold).toBe(125_000);
  expect(resolveServeOptions({ iface: 'eth0', floodThreshold: '50000' }).floodThreshold).toBe(50_000);
  expect(() => resolveServeOptions({ iface: 'eth0', floodThreshold: '0' })).toThrow(/--flood-threshold: Too small/);
  expect(() => resolveServeOptions({ iface: 'eth0', floodThreshold: '1e5' })).toThrow(/--flood-threshold: not a whole number/);
});
