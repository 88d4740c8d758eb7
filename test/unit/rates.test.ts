/** Rates over fixed windows (controller/rates.ts): pure, no kernel. */
import { describe, expect, test } from 'vitest';
import { RateWindow, type Totals } from '../../control/controller/rates.js';

const totals = (entries: Record<string, Totals>) => new Map(Object.entries(entries));

describe('RateWindow', () => {
  test("no rates before a window has ended, then the last window's, however often they are read", () => {
    const window = new RateWindow();
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
    window.sample(10_000, totals({ 'vip:1': { packets: 100, bytes: 6_000 } }));
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
    window.sample(12_000, totals({ 'vip:1': { packets: 300, bytes: 18_000 } }));
    for (let read = 0; read < 3; read++) expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 100, bytesPerSecond: 6_000 });
    window.sample(13_000, totals({ 'vip:1': { packets: 310, bytes: 18_600 } }));
    expect(window.rates('vip:1')).toEqual({ packetsPerSecond: 10, bytesPerSecond: 600 });
  });

  test('a counter new in the window, gone from it, or gone back has no rate', () => {
    const window = new RateWindow();
    window.sample(0, totals({ 'vip:1': { packets: 50, bytes: 500 }, 'vip:2': { packets: 5, bytes: 50 } }));
    window.sample(1_000, totals({ 'vip:1': { packets: 10, bytes: 100 }, 'vip:3': { packets: 7, bytes: 70 } }));
    for (const key of ['vip:1', 'vip:2', 'vip:3']) expect(window.rates(key)).toEqual({ packetsPerSecond: 0, bytesPerSecond: 0 });
  });
});
