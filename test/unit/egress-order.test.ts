/**
 * Which egress filters run before xlb's, read from `tc -j filter show` as this kernel
 * lists them (chain 0 by preference, a cls_bpf preference newest handle first), and the
 * text the warning, the link event and via-vip failure reasons carry, naming tcx egress
 * programs (which run before every filter) too.
 */
import { describe, expect, test } from 'vitest';
import { egressAheadText, filtersAhead } from '../../control/daemon/egress-order.js';
import type { TcFilterRow } from '../../control/daemon/tc-filters.js';

const OURS = { pref: 30828, programId: 51462 };
const u32 = (pref: number, chain = 0): TcFilterRow[] => [
  { protocol: 'ip', pref, kind: 'u32', chain },
  { protocol: 'ip', pref, kind: 'u32', chain, options: {} },
  { protocol: 'ip', pref, kind: 'u32', chain, options: {} },
];
const bpf = (pref: number, ...handles: [handle: string, id: number][]): TcFilterRow[] => [
  { protocol: 'all', pref, kind: 'bpf', chain: 0 },
  ...handles.map(([handle, id]) => ({
    protocol: 'all',
    pref,
    kind: 'bpf',
    chain: 0,
    options: { handle, prog: { id, name: id === OURS.programId ? 'xlb_probe' : 'lab_pass' } },
  })),
];
const XLB: [string, number] = ['0x786c62', OURS.programId];

describe('the egress filters ahead of xlb_probe', () => {
  test("xlb's alone, or first with others after it (a later preference, another chain): none", () => {
    expect(filtersAhead(bpf(30828, XLB), OURS)).toEqual([]);
    expect(filtersAhead([...bpf(30828, XLB), ...u32(31828), ...u32(1, 3)], OURS)).toEqual([]);
  });

  test("a lower preference runs first: named once, with its protocol; a same-preference handle listed before xlb's too", () => {
    expect(filtersAhead([...u32(1), ...bpf(30828, XLB)], OURS)).toEqual(['pref 1, u32, protocol ip']);
    expect(filtersAhead(bpf(30828, ['0x1', 51472], ['0x2', 51467], XLB, ['0x3', 51470]), OURS)).toEqual([
      'pref 30828, bpf, handle 0x1, program lab_pass',
      'pref 30828, bpf, handle 0x2, program lab_pass',
    ]);
    expect(filtersAhead([...bpf(5, ['0x9', 7]), ...u32(10), ...bpf(30828, XLB)], OURS)).toEqual([
      'pref 5, bpf, handle 0x9, program lab_pass',
      'pref 10, u32, protocol ip',
    ]);
  });

  test("xlb's filter not listed, or running another program: nothing to say here (the link watch reports it missing)", () => {
    expect(filtersAhead(u32(1), OURS)).toEqual([]);
    expect(filtersAhead([...u32(1), ...bpf(30828, ['0x786c62', 99])], OURS)).toEqual([]);
  });

  test('the text names the filter or filters, the interface and the way out', () => {
    expect(egressAheadText('eth0', { tcx: [], filters: [] }, OURS)).toBeNull();
    expect(egressAheadText('eth0', { tcx: [], filters: ['pref 1, u32, protocol ip'] }, OURS)).toBe(
      "an egress filter (pref 1, u32, protocol ip) runs before xlb_probe on eth0: probes may not reach it; a filter at a preference above 30828 runs after xlb's",
    );
    expect(egressAheadText('eth0', { tcx: [], filters: ['pref 1, u32', 'pref 2, u32'] }, OURS)).toMatch(
      /^egress filters \(pref 1, u32; pref 2, u32\) run before xlb_probe on eth0: /,
    );
  });

  test('tcx egress programs run before every filter: named first, by id and name (id alone when it has none)', () => {
    expect(egressAheadText('eth0', { tcx: [{ id: 42, name: 'foo' }], filters: [] }, OURS)).toBe(
      'a tcx egress program (id 42, name foo) runs before xlb_probe on eth0: probes may not reach it; tcx programs run before every tc filter',
    );
    expect(
      egressAheadText(
        'eth1',
        {
          tcx: [
            { id: 42, name: 'foo' },
            { id: 43, name: '' },
          ],
          filters: ['pref 1, u32'],
        },
        OURS,
      ),
    ).toBe(
      'tcx egress programs (id 42, name foo; id 43) and an egress filter (pref 1, u32) run before xlb_probe on eth1: probes may not reach it; ' +
        "tcx programs run before every tc filter; a filter at a preference above 30828 runs after xlb's",
    );
  });
});
