/**
 * The flood section of `npm run bench` (docs/benchmarks.md): established flows in the
 * default connection table, a random-source SYN flood into the same table, then a
 * backend added to the VIP; what share of the established flows still reaches its
 * backend, read through the real program's dry run on the same maps.
 */
import { DEFAULT_FLOWS } from '../control/dataplane/codec.js';
import type { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { formatMac } from '../control/net/address.js';
import { addBackend, balancer, MAC_LB, V4_SOURCE_OFFSET, V4_TCP } from './balancer.js';
import { frame } from './frames.js';
import type { Harness, HarnessOptions, Result } from './harness.js';
import { checked, packetCase } from './packet-case.js';

/** The bench's VIP: v4 TCP dsr (V4_TCP's destination), given four backends here. */
const VIP_ID = 0;
const BACKENDS = 4;
/** Flood packets per BPF_PROG_TEST_RUN call (~20 ms at 10-15 Mpps), so the flood ends close to its time. */
const FLOOD_BATCH = 1 << 18;

export interface FloodOptions {
  /** Established flows to record. */
  flows: number;
  floodSeconds: number;
  /** Harness repeats per round of the cost measurements (default: the harness's). */
  costRepeat?: number;
}

export const FLOOD_BENCH: FloodOptions = { flows: 20_000, floodSeconds: 10 };

/** What the section reports besides its rows (results.json's top-level `flood`). */
export interface FloodSummary {
  /** Share (0..1) of the established flows still reaching their backend after the flood and the backend add. */
  establishedKept: number;
  floodPps: number;
  floodPackets: number;
  hitNs: { before: number; after: number };
  newFlowNs: { before: number; after: number };
}

/** A recorded flow: an ACK of it, and the MAC of the backend its SYN went to. */
export interface EstablishedFlow {
  ack: Buffer;
  backendMac: string;
}

/**
 * Flow `i`'s frame: clients from 198.18.64.0 on, each its own source address, on source
 * ports 20000-39999 (the flood's frames keep V4_TCP's port 40000, so no flood packet is
 * one of these flows).
 */
function flowFrame(i: number, flags: 'S' | 'A'): Buffer {
  const src = `198.18.${64 + (i >> 8)}.${i & 255}`;
  return frame({ ...V4_TCP, src, sport: 20_000 + (i % 20_000), flags }, MAC_LB);
}

/**
 * Records `count` established flows through the real program, each a SYN then an
 * ACK, every packet checked to end in tx_dsr and nearly every ACK to hit its SYN's
 * entry (a SYN whose bucket and neighbour hold only established flows is not recorded:
 * that flow goes by the ring).
 */
export function recordFlows(dp: TestDataplane, count: number): EstablishedFlow[] {
  const {
    value: flows,
    packets,
    hitShare,
  } = checked(dp, 'tx_dsr', null, () =>
    Array.from({ length: count }, (_, i) => {
      const sent = dp.program.testRun({ data: flowFrame(i, 'S') });
      const ack = flowFrame(i, 'A');
      dp.program.testRun({ data: ack });
      return { ack, backendMac: formatMac(sent.data) };
    }),
  );
  const hits = Math.round(hitShare * packets);
  if (packets !== 2 * count || hits > count || hits < 0.99 * count)
    throw new Error(`recording ${count} flows: ${packets} packets, ${hits} table hits (expected ${2 * count} and nearly ${count})`);
  return flows;
}

/** Per flow, where the real program sends its ACK now (by its dry run on the same maps), and whether by a table hit. */
export function traceFlows(dp: TestDataplane, flows: readonly EstablishedFlow[]): { backendMac: string; inTable: boolean }[] {
  const macs = new Map<number, string>();
  const macOf = (id: number) => {
    if (!macs.has(id)) macs.set(id, formatMac(dp.getBackend(id)!.mac));
    return macs.get(id)!;
  };
  return flows.map((flow) => {
    const { outcome, table, ring } = dp.trace(flow.ack);
    if (outcome !== 'tx_dsr') throw new Error(`an established flow's ACK would end in ${outcome}, not tx_dsr`);
    // A table hit names the flow's recorded backend; a miss goes where the ring says.
    const backendId = table?.hit ? table.backendId : ring?.backendId;
    if (backendId === undefined) throw new Error('the dry run of an established flow read neither the table nor the ring');
    return { backendMac: macOf(backendId), inTable: table?.hit ?? false };
  });
}

/** How many of `flows` still reach their backend, and how many through the table. */
function tally(dp: TestDataplane, flows: readonly EstablishedFlow[]): { kept: number; inTable: number } {
  const answers = traceFlows(dp, flows);
  return {
    kept: answers.filter((answer, i) => answer.backendMac === flows[i]!.backendMac).length,
    inTable: answers.filter((answer) => answer.inTable).length,
  };
}

/** Drives a random-source SYN flood (a new source address every packet) through the harness for `seconds`. */
export function flood(h: Harness, dp: TestDataplane, seconds: number): { packets: number; pps: number } {
  const syn = frame({ ...V4_TCP, flags: 'S' }, MAC_LB);
  const { value: elapsedNs, packets } = checked(dp, 'tx_dsr', 'miss', () => {
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    while (elapsed < BigInt(Math.round(seconds * 1e9))) {
      h.offer(dp.program, syn, { flowOffset: V4_SOURCE_OFFSET, flows: 0, repeat: FLOOD_BATCH });
      elapsed = process.hrtime.bigint() - start;
    }
    return Number(elapsed);
  });
  return { packets, pps: packets / (elapsedNs / 1e9) };
}

/** The new-flow and hit cost against the reflector, as the packet-cost section measures them. */
function costs(h: Harness, dp: TestDataplane, when: string, o: HarnessOptions): { rows: Result[]; newFlowNs: number; hitNs: number } {
  // New flows first, as the packet-cost section orders them: a new flow's source is the
  // template's XOR its flow number, so flow 0 is the hit case's flow, new only before it.
  const [newFlow] = packetCase(h, dp, [
    `v4 TCP new flow (dsr), ${when}`,
    V4_TCP,
    { ...o, flowOffset: V4_SOURCE_OFFSET },
    null,
    'tx_dsr',
    'miss',
  ]);
  const [hit] = packetCase(h, dp, [`v4 TCP connection-table hit (dsr), ${when}`, V4_TCP, o, null, 'tx_dsr', 'hit']);
  return { rows: [newFlow!, hit!], newFlowNs: newFlow!.value, hitNs: hit!.value };
}

const percent = (part: number, whole: number) => (100 * part) / whole;

/** The flood section: its rows, and the summary results.json keeps as `flood`. */
export function measureFlood(h: Harness, o: FloodOptions = FLOOD_BENCH): { rows: Result[]; summary: FloodSummary } {
  const dp = balancer({ maxFlows: DEFAULT_FLOWS, backends: BACKENDS });
  try {
    const costOptions: HarnessOptions = o.costRepeat ? { repeat: o.costRepeat } : {};
    const flows = recordFlows(dp, o.flows);
    const recorded = tally(dp, flows);
    // The ring has not changed: every flow reaches its backend, in the table or not.
    if (recorded.kept !== flows.length) throw new Error(`${flows.length - recorded.kept} recorded flows already reach another backend`);
    const before = costs(h, dp, `${o.flows.toLocaleString('en')} flows recorded`, costOptions);
    // The new-flow case's packets are new flows in the same table: what they leave of the flows.
    const beforeFlood = tally(dp, flows);
    const flooded = flood(h, dp, o.floodSeconds);
    addBackend(dp, VIP_ID);
    const after = tally(dp, flows);
    const afterCosts = costs(h, dp, 'after the flood and the backend add', costOptions);
    const establishedKept = after.kept / flows.length;
    const rows: Result[] = [
      { name: `established flows recorded (SYN, then ACK; VIP with ${BACKENDS} backends)`, value: flows.length, unit: 'flows' },
      { name: '  of them in the connection table', value: percent(recorded.inTable, flows.length), unit: '%' },
      ...before.rows,
      { name: '  established flows in the table after those new flows', value: percent(beforeFlood.inTable, flows.length), unit: '%' },
      { name: `random-source SYN flood, ${o.floodSeconds} s`, value: flooded.pps / 1e6, unit: 'Mpps' },
      { name: '  flood packets', value: flooded.packets, unit: 'packets' },
      { name: 'then a backend added: established flows in the table', value: percent(after.inTable, flows.length), unit: '%' },
      {
        name: 'established flows kept on their backend',
        value: 100 * establishedKept,
        unit: '%',
        target: '>= 99.9%',
        met: establishedKept >= 0.999,
      },
      ...afterCosts.rows,
    ];
    const summary: FloodSummary = {
      establishedKept,
      floodPps: flooded.pps,
      floodPackets: flooded.packets,
      hitNs: { before: before.hitNs, after: afterCosts.hitNs },
      newFlowNs: { before: before.newFlowNs, after: afterCosts.newFlowNs },
    };
    return { rows, summary };
  } finally {
    dp.close();
  }
}
