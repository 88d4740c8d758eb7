/**
 * A short soak (`npm run soak` runs 10 minutes): TCP and UDP traffic while backends
 * flap, weights change and the daemon restarts. Nothing may fail or break except
 * flows that went to a backend while it was dead and still in its ring.
 */
import { expect, test } from 'vitest';
import { soak } from '../scripts/soak.js';

test('20 s of traffic through flaps, weight changes and daemon restarts: no failed or broken connections to healthy backends', async () => {
  const report = await soak(20);
  // Traffic ran throughout; how much depends on the machine's load (speed is the bench's to judge).
  expect(report.attempted).toBeGreaterThan(500);
  expect(report.events.flaps).toBeGreaterThan(3);
  expect(report.events.daemonRestarts).toBeGreaterThan(1);
  expect(report.events.weightChanges).toBeGreaterThan(3);
  expect({ failed: report.failed, broken: report.broken }).toEqual({ failed: 0, broken: 0 });
}, 120_000);
