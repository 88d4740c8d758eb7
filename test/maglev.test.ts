/** The C Maglev build the bench compares with (compiled here with the system's cc). */
import { describe, expect, test } from 'vitest';
import { benchBackends, compileCBuild, tableDigest } from '../bench/maglev-c.js';
import { buildMaglevTable } from '../control/maglev/maglev.js';

const M = 65537;

describe("the bench's C Maglev build", () => {
  // The bench compares build speed with this C build: it must build the same tables.
  test('the C yardstick of npm run bench builds the same tables', () => {
    const c = compileCBuild();
    try {
      for (const [n, m] of [
        [1, 251],
        [10, M],
        [100, M],
        [1000, M],
      ] as const) {
        expect(c.run(n, m, 1).digest, `N=${n} M=${m}`).toBe(tableDigest(buildMaglevTable(benchBackends(n), m)));
      }
    } finally {
      c.close();
    }
  });
});
