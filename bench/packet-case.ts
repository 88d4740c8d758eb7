/**
 * One packet case of the bench: a frame through the balancer against the reflector,
 * with the data plane's own counters checked so a case never times the wrong path.
 * The packet-cost, scaling and flood sections share it.
 */
import { type Outcome, OUTCOMES } from '../control/dataplane/codec.js';
import type { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { MAC_LB } from './balancer.js';
import { frame, type FrameSpec } from './frames.js';
import type { Harness, HarnessOptions, Result } from './harness.js';

/** VIP ids of the packet-cost cases' VIPs (see `balancer`). */
const CASE_VIP_IDS = [0, 1, 2, 3];

/** Connection-table hits and misses so far, over the case VIPs. */
function tableUse(dp: TestDataplane): { hits: number; misses: number } {
  let hits = 0;
  let misses = 0;
  for (const id of CASE_VIP_IDS) {
    const stats = dp.vipStats(id);
    hits += stats.flow_hits;
    misses += stats.flow_misses;
  }
  return { hits, misses };
}

/**
 * What a case's packets must do in the connection table: `miss` (every packet a new
 * flow), `hit` (one flow, recorded by its first packet: at most one miss), or
 * `share` (many flows: the share of hits is reported, not checked).
 */
export type TablePath = 'miss' | 'hit' | 'share';

/**
 * Runs a measurement and checks every packet ended in `outcome` and took the table
 * path the case names: a bench must not time a drop path, or misses for hits, by
 * mistake. Returns the measurement, the packets it sent and the share of table hits.
 */
export function checked<T>(
  dp: TestDataplane,
  outcome: Outcome,
  table: TablePath | null,
  measure: () => T,
): { value: T; packets: number; hitShare: number } {
  const before = dp.counters();
  const tableBefore = tableUse(dp);
  const value = measure();
  const after = dp.counters();
  const tableAfter = tableUse(dp);
  let packets = 0;
  for (const name of OUTCOMES) {
    const delta = after[name].packets - before[name].packets;
    if (name !== outcome && delta) throw new Error(`bench case expected every packet to end in ${outcome}, but ${delta} ended in ${name}`);
    packets += delta;
  }
  const hits = tableAfter.hits - tableBefore.hits;
  const misses = tableAfter.misses - tableBefore.misses;
  if (table === 'miss' && misses !== packets)
    throw new Error(`bench case expected every packet to be a new flow, but ${hits} of ${packets} hit the table`);
  if (table === 'hit' && (misses > 1 || hits + misses !== packets))
    throw new Error(`bench case expected table hits, but ${misses} of ${packets} packets missed`);
  return { value, packets, hitShare: packets ? hits / packets : 0 };
}

export type PacketCase = [
  name: string,
  spec: FrameSpec,
  o: HarnessOptions,
  target: number | null,
  outcome: Outcome,
  table: TablePath | null,
];

/** One packet case against its yardstick, with the share of table hits where the case reports it. */
export function packetCase(h: Harness, dp: TestDataplane, [name, spec, o, target, outcome, table]: PacketCase): Result[] {
  const data = frame(spec, MAC_LB);
  if (o.flows) h.offer(dp.program, data, { ...o, repeat: o.flows }); // record the flows first
  // Each case's yardstick is the reflector under the same harness settings (a case
  // that varies the flow pays for that in the harness, so does its yardstick; so
  // does one whose pushed header the harness undoes with a helper call).
  const { value: measured, hitShare } = checked(dp, outcome, table, () => h.compare(dp.program, data, o));
  const { value, limit: yardstick } = measured;
  const ratio = value / yardstick;
  const result: Result = {
    name,
    value,
    unit: 'ns/packet',
    limit: yardstick,
    ratio,
    ...(target ? { target: `<= ${target}x limit`, met: ratio <= target } : {}),
  };
  return table === 'share' ? [result, { name: '  of which connection-table hits', value: 100 * hitShare, unit: '%' }] : [result];
}
