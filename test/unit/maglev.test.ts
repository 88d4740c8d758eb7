import { describe, expect, test } from 'vitest';
import { buildMaglevTable, isPrime, type MaglevBackend, permutation } from '../../control/maglev/maglev.js';
import { benchBackends } from '../../bench/maglev-c.js';

const M = 65537;
const backends = (n: number, weight = 1): MaglevBackend[] => benchBackends(n).map((b) => ({ ...b, weight }));

function slotCounts(table: Uint32Array, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const i of table) counts[i]!++;
  return counts;
}

/** Slots whose owner (by key) differs between two tables. */
function moved(a: Uint32Array, aKeys: MaglevBackend[], b: Uint32Array, bKeys: MaglevBackend[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (aKeys[a[i]!]!.key !== bKeys[b[i]!]!.key) n++;
  return n;
}

/**
 * The paper's population (NSDI 2016, Pseudocode 1) written plainly: slot
 * permutation[i][next[i]] computed from scratch, no position stepping.
 */
function paperPopulation(keys: string[], size: number): Uint32Array {
  const ranked = [...keys].sort();
  const given = new Map(keys.map((key, i) => [key, i]));
  const perms = ranked.map((key) => permutation(key, size));
  const next = new Array<number>(ranked.length).fill(0);
  const entry = new Int32Array(size).fill(-1);
  const slotOf = (i: number) => (perms[i]!.offset + next[i]! * perms[i]!.skip) % size;
  for (let filled = 0; ;) {
    for (let i = 0; i < ranked.length; i++) {
      while (entry[slotOf(i)]! >= 0) next[i]!++;
      entry[slotOf(i)] = given.get(ranked[i]!)!;
      next[i]!++;
      if (++filled === size) return Uint32Array.from(entry);
    }
  }
}

describe('Maglev table population', () => {
  test.each([
    [1, 2],
    [2, 2],
    [2, 3],
    [3, 5],
    [5, 7],
    [1, 251],
    [3, 251],
    [7, 65537],
    [100, 65537],
  ])("equal weights give exactly the paper's table (%i backends, M=%i)", (n, size) => {
    const list = backends(n).reverse(); // given out of key order
    const table = buildMaglevTable(list, size);
    const paper = paperPopulation(
      list.map((b) => b.key),
      size,
    );
    // The first differing slot, not a diff of 65537 entries.
    expect(table.findIndex((owner, slot) => owner !== paper[slot])).toBe(-1);
  });

  test("builds beyond the reused working arrays' first size (over 4096 backends, M over 655373) give the paper's table, and so do smaller builds after them", () => {
    for (const [n, size] of [
      [4100, 8209],
      [3, 1000003],
      [7, 251],
    ] as const) {
      const list = backends(n).reverse();
      const table = buildMaglevTable(list, size);
      const paper = paperPopulation(
        list.map((b) => b.key),
        size,
      );
      expect(table.findIndex((owner, slot) => owner !== paper[slot])).toBe(-1);
    }
  });

  test.each([1, 2, 3, 7, 100, 1000])('equal weights give each of %i backends floor(M/N) or ceil(M/N) slots', (n) => {
    const counts = slotCounts(buildMaglevTable(backends(n), M), n);
    for (const c of counts) {
      expect(c).toBeGreaterThanOrEqual(Math.floor(M / n));
      expect(c).toBeLessThanOrEqual(Math.ceil(M / n));
    }
  });

  test('removing 1 of N backends moves little more than its own slots', () => {
    for (const n of [5, 10, 100]) {
      const before = backends(n);
      const after = before.filter((_, i) => i !== 2);
      const a = buildMaglevTable(before, M);
      const b = buildMaglevTable(after, M);
      const own = slotCounts(a, n)[2]!;
      const changed = moved(a, before, b, after);
      // Every slot of the removed backend must move; the paper measures a small extra
      // disruption among the others. Bound it at 1% of M beyond the removed share.
      expect(changed).toBeGreaterThanOrEqual(own);
      expect(changed - own).toBeLessThan(0.01 * M);
    }
  });

  test('adding a backend moves about 1/(N+1) of the slots', () => {
    const before = backends(10);
    const after = backends(11);
    const changed = moved(buildMaglevTable(before, M), before, buildMaglevTable(after, M), after);
    expect(changed).toBeGreaterThanOrEqual(Math.floor(M / 11));
    expect(changed).toBeLessThan(Math.floor(M / 11) + 0.01 * M);
  });

  test.each([[[3, 1]], [[1, 2, 3, 4]], [[10, 1]], [[100, 37, 1]]])('weights %j are proportional within 1%%', (weights) => {
    const list = weights.map((weight, i) => ({ key: `backend-${i}`, weight }));
    const counts = slotCounts(buildMaglevTable(list, M), list.length);
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => {
      const expected = (M * w) / total;
      expect(Math.abs(counts[i]! - expected) / expected).toBeLessThan(0.01);
    });
  });

  test('the table does not depend on the order backends are given in', () => {
    const list = backends(50).map((b, i) => ({ ...b, weight: 1 + (i % 3) }));
    const shuffled = [...list].reverse();
    const a = buildMaglevTable(list, M);
    const b = buildMaglevTable(shuffled, M);
    // The first slot whose owner differs (one expect, not one per slot).
    expect(a.findIndex((owner, slot) => list[owner]!.key !== shuffled[b[slot]!]!.key)).toBe(-1);
  });

  test('every slot is filled and the table is deterministic', () => {
    const list = backends(3);
    const a = buildMaglevTable(list, 251);
    expect(a).toEqual(buildMaglevTable(list, 251));
    expect(new Set(a)).toEqual(new Set([0, 1, 2]));
  });

  // Rings must not move when the daemon is upgraded: a new hash would move every flow
  // the connection table does not hold.
  test('permutations stay what earlier releases computed', () => {
    expect(permutation('198.18.0.1', M)).toEqual({ offset: 29102, skip: 26212 });
    expect(permutation('2001:db8::10', M)).toEqual({ offset: 65453, skip: 15877 });
    expect(permutation('é-backend', M)).toEqual({ offset: 22530, skip: 58127 });
  });

  test('a table built into a given array is the table built into a new one', () => {
    const into = new Uint32Array(M).fill(7);
    expect(buildMaglevTable(backends(5), M, into)).toBe(into);
    const fresh = buildMaglevTable(backends(5), M);
    expect(into.findIndex((owner, slot) => owner !== fresh[slot])).toBe(-1);
    expect(() => buildMaglevTable(backends(5), M, new Uint32Array(251))).toThrow(/251 slots, expected 65537/);
  });

  test('bad input is refused with a reason', () => {
    expect(() => buildMaglevTable(backends(2), 65536)).toThrow(/prime/);
    expect(() => buildMaglevTable([], 251)).toThrow(/at least one/);
    expect(() => buildMaglevTable([{ key: 'a', weight: 0 }], 251)).toThrow(/weight/);
    expect(() => buildMaglevTable([{ key: 'a', weight: 1.5 }], 251)).toThrow(/weight/);
    expect(() =>
      buildMaglevTable(
        [
          { key: 'a', weight: 1 },
          { key: 'a', weight: 1 },
        ],
        251,
      ),
    ).toThrow(/twice/);
    expect(() => buildMaglevTable(backends(300), 251)).toThrow(/do not fit/);
  });

  test('isPrime', () => {
    expect([2, 3, 251, 65537, 655373].every(isPrime)).toBe(true);
    expect([0, 1, 4, 65536, 655371].some(isPrime)).toBe(false);
  });
});
