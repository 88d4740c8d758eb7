/**
 * The dry run (bpf/balancer/trace.h): xlb_trace, the balancer's code built from the
 * same source with a trace record at each decision, loaded on the running data
 * plane's maps (handed over by descriptor: none made afresh, none pinned or
 * unpinned), run on one frame at a time with BPF_PROG_TEST_RUN. It writes nothing those maps hold and reports what the
 * balancer's code decided for the frame.
 */
import { BpfObject, type BpfMap, type BpfProgram } from '@xlb/native';
import { type FlowState, flowState, MAPS, OUTCOMES, type Outcome, PROGRAMS, TRACE_F, TRACE_OBJECT, traceCodec, vipCodec } from './codec.js';
import type { VipRecord } from './records.js';
import { u32Bytes } from './struct.js';

/** The XDP verdicts by return value. */
const VERDICTS = ['aborted', 'drop', 'pass', 'tx', 'redirect'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** What the balancer's code did with one frame. */
export interface DryRunResult {
  verdict: Verdict;
  outcome: Outcome;
  /** The VIP the flow matched, or null. */
  vip: VipRecord | null;
  /** The connection table: not read (null), or what its lookup found (the entry's state if found). */
  table: { found: boolean; hit: boolean; backendId: number; state: FlowState | null } | null;
  /** The ring: not read (null: no VIP, conntrack off, or the packet stopped before), or the flow's hash, its slot and the id there. */
  ring: { hash: number; slot: number; backendId: number } | null;
  /** The frame as the program left it (what XDP_TX sends). */
  output: Buffer;
}

export class DryRun {
  private readonly record: BpfMap;
  private readonly program: BpfProgram;

  private constructor(private readonly object: BpfObject) {
    this.record = object.map(MAPS.trace);
    this.program = object.program(PROGRAMS.trace);
  }

  /** Loads xlb_trace on `maps` (object map name -> the running data plane's map). */
  static load(maps: Record<string, BpfMap>, objectPath = TRACE_OBJECT): DryRun {
    const object = new BpfObject(objectPath, { reuseMaps: maps });
    try {
      return new DryRun(object);
    } catch (error) {
      object.close();
      throw error;
    }
  }

  run(frame: Buffer): DryRunResult {
    this.record.update(u32Bytes(0), Buffer.alloc(traceCodec.size));
    const { retval, data } = this.program.testRun({ data: frame });
    const trace = traceCodec.decode(this.record.lookup(u32Bytes(0))!);
    const has = (flag: number) => (trace.flags & flag) !== 0;
    const outcome = OUTCOMES[trace.outcome];
    if (!has(TRACE_F.done) || !outcome) throw new Error(`the dry run ended without an outcome (XDP return ${retval})`);
    return {
      verdict: VERDICTS[retval] ?? 'aborted',
      outcome,
      vip: has(TRACE_F.vip) ? vipCodec.decode(trace.vip) : null,
      table: has(TRACE_F.table)
        ? {
            found: has(TRACE_F.tableFound),
            hit: has(TRACE_F.tableHit),
            backendId: trace.table_backend_id,
            state: has(TRACE_F.tableFound) ? flowState(trace.table_state) : null,
          }
        : null,
      ring: has(TRACE_F.ring) ? { hash: trace.hash, slot: trace.ring_slot, backendId: trace.ring_backend_id } : null,
      output: data,
    };
  }

  close(): void {
    this.record.close();
    this.program.close();
    this.object.close();
  }
}
