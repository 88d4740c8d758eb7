/**
 * What the bench's sections share: the result row they report, and the restoring
 * harness of bpf/bench/bench.bpf.c that times one XDP program.
 */
import { BpfObject, type BpfProgram, type TestRunResult } from '@xlb/native';
import { packagePath } from '../control/paths.js';

const BENCH_OBJECT = packagePath('bpf/build/bench.bpf.o');
const REPEAT = 200_000;
/**
 * Runs per figure; the fastest counts (other guests on the host only ever add time).
 * Enough that a slow spell on the host rarely covers every run of one side.
 */
const SAMPLES = 15;
export interface Result {
  name: string;
  value: number;
  unit: string;
  /** The same thing for the yardstick, when there is one. */
  limit?: number;
  ratio?: number;
  target?: string;
  met?: boolean;
}

export interface HarnessOptions {
  /** Where to XOR a per-iteration flow number into the frame (0: never). */
  flowOffset?: number;
  /** Distinct flow numbers to cycle through (0: never repeat). */
  flows?: number;
  /**
   * Call bpf_xdp_adjust_head every iteration (for cases that push a header: the
   * harness must undo the push, and the reflector's run then pays the same call).
   */
  alwaysAdjustHead?: boolean;
  repeat?: number;
}

/** Mean ns per run of `program` over `data`: a warm-up run, then the fastest of SAMPLES runs of `repeat`. */
function fastest(program: BpfProgram, data: Buffer, repeat: number): number {
  program.testRun({ data, repeat: Math.min(repeat, 50_000) }); // warm caches and tables
  return Math.min(...Array.from({ length: SAMPLES }, () => program.testRun({ data, repeat }).duration));
}

/** The restoring harness of bpf/bench/bench.bpf.c with one program under test. */
export class Harness {
  private readonly object = new BpfObject(BENCH_OBJECT);
  readonly harness = this.object.program('bench_harness');
  readonly reflect = this.object.program('bench_reflect');
  private readonly targets = this.object.map('bench_target_v1');
  private readonly packet = this.object.map('bench_packet_v1');
  private readonly memoryChase = this.object.program('bench_memory_chase');

  /** Mean ns per packet (the fastest of SAMPLES runs of `repeat`), harness included. */
  measure(program: BpfProgram, data: Buffer, o: HarnessOptions = {}): number {
    this.load(program, data, o);
    return fastest(this.harness, data, o.repeat ?? REPEAT);
  }

  /** Sends `o.repeat` packets through `program` once, untimed (to record flows in its table); the last packet's result. */
  offer(program: BpfProgram, data: Buffer, o: HarnessOptions & { repeat: number }): TestRunResult {
    this.load(program, data, o);
    return this.harness.testRun({ data, repeat: o.repeat });
  }

  /**
   * The program and the reflector under the same harness settings, run alternately
   * (SAMPLES rounds, the fastest of each): a slow spell on the host then slows both
   * sides of the ratio, not one.
   */
  compare(program: BpfProgram, data: Buffer, o: HarnessOptions = {}): { value: number; limit: number } {
    const [limit, value] = this.alternate([this.reflect, program], data, o);
    return { value: value!, limit: limit! };
  }

  /** Each program's fastest round, run in turn under the same harness settings (after a warm-up round). */
  alternate(programs: BpfProgram[], data: Buffer, o: HarnessOptions = {}): number[] {
    const repeat = o.repeat ?? REPEAT;
    const fastestOf = programs.map(() => Infinity);
    for (let round = -1; round < SAMPLES; round++) {
      programs.forEach((program, i) => {
        this.load(program, data, o);
        const duration = this.harness.testRun({ data, repeat }).duration;
        if (round >= 0) fastestOf[i] = Math.min(fastestOf[i]!, duration);
      });
    }
    return fastestOf;
  }

  /**
   * ns per dependent read at a random line of `bytes` (a power of two from 64 B to
   * 32 MiB; bench_memory_chase), the fastest of SAMPLES runs.
   */
  memoryLatency(bytes: number): number {
    const data = Buffer.alloc(64);
    data[0] = Math.log2(bytes / 64); // the program reads 2^data[0] lines
    return fastest(this.memoryChase, data, REPEAT);
  }

  private load(program: BpfProgram, data: Buffer, o: HarnessOptions): void {
    const value = Buffer.alloc(this.packet.info.valueSize);
    value.writeUInt32LE(data.length, 0);
    value.writeUInt32LE(o.flowOffset ?? 0, 4);
    value.writeUInt32LE(o.flows ?? 0, 8);
    // IPv4 frames get their header checksum recomputed after the flow number changes it.
    value.writeUInt32LE(data.readUInt16BE(12) === 0x0800 ? 14 : 0, 12);
    value.writeUInt32LE(o.alwaysAdjustHead ? 1 : 0, 16);
    data.copy(value, 24);
    this.packet.update(Buffer.alloc(4), value);
    this.targets.update(Buffer.alloc(4), program);
  }

  close(): void {
    for (const x of [this.harness, this.reflect, this.memoryChase, this.targets, this.packet]) x.close();
    this.object.close();
  }
}
