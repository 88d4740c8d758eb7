/**
 * `npm run bench`: what operators pick a load balancer for, measured side by side in
 * one run and reported as ratios (docs/benchmarks.md has the method). Prints tables
 * and writes bench/results.json. Speed targets live here, never in tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BpfObject, type BpfProgram, type TestRunResult } from '@xlb/native';
import { parseAddress, parseMac } from '../control/dataplane/address.js';
import { DEFAULT_FLOWS, flowBucketCodec, FORWARD_DSR, FORWARD_IPIP, IPPROTO_TCP, IPPROTO_UDP, type Outcome, OUTCOMES } from '../control/dataplane/codec.js';
import { Dataplane, flowBuckets } from '../control/dataplane/dataplane.js';
import { buildMaglevTable } from '../control/maglev/maglev.js';
import { packagePath } from '../control/paths.js';
import { table } from '../control/cli/format.js';
import { measureControlPlane } from './control-plane.js';
import { measureForwarding } from './forwarding.js';
import { benchBackends, compileCBuild, tableDigest } from './maglev-c.js';
import { frame, type FrameSpec } from './frames.js';

const BENCH_OBJECT = packagePath('bpf/build/bench.bpf.o');
const REPEAT = 200_000;
/**
 * Runs per figure; the fastest counts (other guests on the host only ever add time).
 * With 7, now and then every run of one side fell in a slow spell on the host (a hit
 * read 1.02x or 1.35x the limit among 1.2-1.3 in repeats of the same comparison).
 */
const SAMPLES = 15;
const MiB = 2 ** 20;
const formatBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);

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

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

interface HarnessOptions {
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
    const repeat = o.repeat ?? REPEAT;
    let value = Infinity;
    let limit = Infinity;
    for (let round = -1; round < SAMPLES; round++) {
      this.load(this.reflect, data, o);
      const l = this.harness.testRun({ data, repeat }).duration;
      this.load(program, data, o);
      const v = this.harness.testRun({ data, repeat }).duration;
      if (round < 0) continue; // warm-up round
      limit = Math.min(limit, l);
      value = Math.min(value, v);
    }
    return { value, limit };
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

export const MAC_LB = '02:00:00:00:00:02';
const backendMac = (n: number) => parseMac(`02:00:00:00:01:${(n % 256).toString(16).padStart(2, '0')}`);

/**
 * A balancer with `vips` VIPs (default 4: the packet-cost cases' v4 TCP, v4 UDP, v6
 * and ipip VIPs, in that order; more are v4 TCP on other addresses), `backends` each.
 */
export function balancer(o: { maxFlows?: number; vips?: number; backends?: number } = {}): Dataplane {
  const backends = o.backends ?? 3;
  const vips = o.vips ?? 4;
  const extraVips = Math.max(0, vips - 4);
  const dp = Dataplane.open({ maxFlows: o.maxFlows ?? 65536, maxVips: Math.max(8, extraVips + 8), maxBackends: Math.max(64, (extraVips + 4) * backends + 8) });
  dp.setConfig({ hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: parseAddress('198.18.0.2').bytes, sourceV6: parseAddress('2001:db8::2').bytes, sourceV4FlowBits: 0, sourceV6FlowBits: 0 });
  let nextBackend = 0;
  const addVip = (id: number, address: string, port: number, proto: number, forwarding: number, family: 4 | 6) => {
    dp.setVip({ family, address: parseAddress(address).bytes, port, proto }, { id, flags: 0, forwarding });
    const members: { key: string; weight: number }[] = [];
    const ids: number[] = [];
    for (let i = 0; i < backends; i++) {
      const backendAddress = family === 4 ? `198.18.${1 + (i >> 8)}.${i & 255}` : `2001:db8:1::${(i + 1).toString(16)}`;
      const backendId = nextBackend++;
      dp.setBackend(backendId, { family, address: parseAddress(backendAddress).bytes, mac: backendMac(i), vipId: id });
      members.push({ key: backendAddress, weight: 1 });
      ids.push(backendId);
    }
    dp.setRing(id, Uint32Array.from(buildMaglevTable(members, dp.ringSize), (i) => ids[i]));
  };
  const caseVips = [
    () => addVip(0, '198.19.0.1', 80, IPPROTO_TCP, FORWARD_DSR, 4),
    () => addVip(1, '198.19.0.1', 53, IPPROTO_UDP, FORWARD_DSR, 4),
    () => addVip(2, '2001:db8:f::1', 80, IPPROTO_TCP, FORWARD_DSR, 6),
    () => addVip(3, '198.19.0.2', 80, IPPROTO_TCP, FORWARD_IPIP, 4),
  ];
  for (const add of caseVips.slice(0, vips)) add();
  for (let i = 0; i < extraVips; i++) addVip(4 + i, `198.19.${1 + (i >> 8)}.${i & 255}`, 443, IPPROTO_TCP, FORWARD_DSR, 4);
  return dp;
}

export const V4_TCP: FrameSpec = { family: 4, proto: 'tcp', src: '198.18.0.10', dst: '198.19.0.1', dport: 80 };
/** Offset of the IPv4 source address in an Ethernet frame: the harness varies it for new flows. */
export const V4_SOURCE_OFFSET = 14 + 12;

/** VIP ids of the packet-cost cases' VIPs (see `balancer`). */
const CASE_VIP_IDS = [0, 1, 2, 3];

/** Connection-table hits and misses so far, over the case VIPs. */
function tableUse(dp: Dataplane): { hits: number; misses: number } {
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
type TablePath = 'miss' | 'hit' | 'share';

/**
 * Runs a measurement and checks every packet ended in `outcome` and took the table
 * path the case names: a bench must not time a drop path, or misses for hits, by
 * mistake. Returns the measurement and the share of table hits.
 */
function checked<T>(dp: Dataplane, outcome: Outcome, table: TablePath | null, measure: () => T): { value: T; hitShare: number } {
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
  if (table === 'miss' && misses !== packets) throw new Error(`bench case expected every packet to be a new flow, but ${hits} of ${packets} hit the table`);
  if (table === 'hit' && (misses > 1 || hits + misses !== packets)) throw new Error(`bench case expected table hits, but ${misses} of ${packets} packets missed`);
  return { value, hitShare: packets ? hits / packets : 0 };
}

type PacketCase = [name: string, spec: FrameSpec, o: HarnessOptions, target: number | null, outcome: Outcome, table: TablePath | null];

/** One packet case against its yardstick, with the share of table hits where the case reports it. */
function packetCase(h: Harness, dp: Dataplane, [name, spec, o, target, outcome, table]: PacketCase): Result[] {
  const data = frame(spec, MAC_LB);
  if (o.flows) h.offer(dp.program, data, { ...o, repeat: o.flows }); // record the flows first
  // Each case's yardstick is the reflector under the same harness settings (a case
  // that varies the flow pays for that in the harness, so does its yardstick; so
  // does one whose pushed header the harness undoes with a helper call).
  const { value: measured, hitShare } = checked(dp, outcome, table, () => h.compare(dp.program, data, o));
  const { value, limit: yardstick } = measured;
  const ratio = value / yardstick;
  const result: Result = { name, value, unit: 'ns/packet', limit: yardstick, ratio, ...(target ? { target: `<= ${target}x limit`, met: ratio <= target } : {}) };
  return table === 'share' ? [result, { name: '  of which connection-table hits', value: 100 * hitShare, unit: '%' }] : [result];
}

function packetCost(h: Harness): Result[] {
  const limit = h.measure(h.reflect, frame(V4_TCP, MAC_LB));
  const withBalancer = (maxFlows: number, cases: PacketCase[]) => {
    const dp = balancer({ maxFlows });
    try {
      return cases.flatMap((c) => packetCase(h, dp, c));
    } finally {
      dp.close();
    }
  };
  const newFlow = { flowOffset: V4_SOURCE_OFFSET };
  return [
    { name: 'limit: harness + MAC-swap XDP_TX', value: limit, unit: 'ns/packet' },
    // The daemon's default table (65,536 flows, 1 MiB).
    ...withBalancer(DEFAULT_FLOWS, [
      ['v4 TCP new flow (dsr)', V4_TCP, newFlow, 2, 'tx_dsr', 'miss'],
      ['v4 TCP connection-table hit (dsr)', V4_TCP, {}, 1.5, 'tx_dsr', 'hit'],
      ['v6 TCP hit (dsr)', { family: 6, proto: 'tcp', src: '2001:db8::10', dst: '2001:db8:f::1', dport: 80 }, {}, 1.5, 'tx_dsr', 'hit'],
      ['v4 UDP hit (dsr)', { ...V4_TCP, proto: 'udp', dport: 53 }, {}, 1.5, 'tx_dsr', 'hit'],
      ['v4 TCP hit (ipip)', { ...V4_TCP, dst: '198.19.0.2' }, { alwaysAdjustHead: true }, 1.5, 'tx_ipip', 'hit'],
      ['non-VIP pass', { ...V4_TCP, dst: '198.18.0.99' }, {}, null, 'pass_not_vip', null],
    ]),
    // A table of 2M flows (32 MiB): every packet's bucket is a read from memory.
    ...withBalancer(1 << 21, [
      ['v4 TCP new flow, 2M-flow table', V4_TCP, newFlow, 2, 'tx_dsr', 'miss'],
      // The flows come round in the same order every time: the worst order for LRU,
      // where every flow of a bucket and its neighbour holding more than their eight
      // ways misses.
      ['v4 TCP over 1M distinct flows (hits)', V4_TCP, { ...newFlow, flows: 1_000_000 }, 1.5, 'tx_dsr', 'share'],
    ]),
    // What those two cases' bucket costs on this machine: they take about a hit plus this.
    { name: 'memory: a dependent read at a random line of 32 MiB', value: h.memoryLatency(32 * MiB), unit: 'ns/read' },
  ];
}

function scaling(h: Harness): Result[] {
  const results: Result[] = [];
  // Each row against the reflector, alternating (packetCase): a slow spell on the host
  // then moves the ratio less than the ns, and flat means flat ratios.
  const hit = (name: string): PacketCase => [name, V4_TCP, {}, null, 'tx_dsr', 'hit'];
  for (const vips of [1, 10, 100, 1000]) {
    const dp = balancer({ vips, backends: 3 });
    results.push(...packetCase(h, dp, hit(`${vips} VIPs: hit`)));
    dp.close();
  }
  for (const backends of [2, 40, 400, 4000]) {
    const dp = balancer({ backends, vips: 4 });
    results.push(...packetCase(h, dp, [`${backends} backends/VIP: new flow`, V4_TCP, { flowOffset: V4_SOURCE_OFFSET }, null, 'tx_dsr', 'miss']));
    dp.close();
  }
  // Offered flows land in buckets at random, so some overflow before the table is
  // full: what it keeps of them is reported next to the hit cost.
  const size = 1 << 20;
  for (const fill of [0, 0.5, 0.9, 1]) {
    const dp = balancer({ maxFlows: size });
    const offered = Math.floor(size * fill);
    if (offered) h.offer(dp.program, frame(V4_TCP, MAC_LB), { flowOffset: V4_SOURCE_OFFSET, flows: offered, repeat: offered });
    const kept = dp.countFlows();
    results.push(...packetCase(h, dp, hit(`connection table offered ${fill * 100}% of its size: hit`)));
    if (offered) results.push({ name: '  flows it keeps of those offered', value: (100 * kept) / offered, unit: '%' });
    dp.close();
  }
  // Hits spread over many flows, each table sized at twice its flows (the sizing
  // advice): every packet reads another bucket, so the cost follows where the table
  // lives, and next to each the memory yardstick at the table's size says what one
  // read from there costs on this machine.
  for (const flows of SPREAD_FLOWS) {
    const dp = balancer({ maxFlows: 2 * flows });
    const tableBytes = flowBuckets(2 * flows) * flowBucketCodec.size;
    const name = `hits over ${flows.toLocaleString('en')} flows, table of ${formatBytes(tableBytes)}`;
    results.push(...packetCase(h, dp, [name, V4_TCP, { flowOffset: V4_SOURCE_OFFSET, flows }, null, 'tx_dsr', 'share']));
    results.push({ name: `  memory: a dependent read in ${formatBytes(tableBytes)}`, value: h.memoryLatency(tableBytes), unit: 'ns/read' });
    dp.close();
  }
  return results;
}

/** Flows of the scaling section's spread-hit cases: a table from 64 KiB (L2) to 8 MiB. */
const SPREAD_FLOWS = [2_048, 16_384, 65_536, 262_144];

/** Rounds of the Maglev comparison; each side's figure is its fastest round. */
const MAGLEV_ROUNDS = 5;
/** Builds before the first round, so V8 has optimised the build code (one was not
 * always enough: the first case then timed partly unoptimised code). */
const JIT_WARM_UP_BUILDS = 10;

function maglev(): Result[] {
  const c = compileCBuild();
  try {
    const results: Result[] = [];
    for (const m of [65537, 655373]) {
      for (const n of [10, 100, 1000]) {
        const repeats = m > 100_000 ? 3 : 10;
        const backends = benchBackends(n);
        // One array for every build, as the daemon's reconciler does.
        const table = new Uint32Array(m);
        for (let i = 0; i < JIT_WARM_UP_BUILDS; i++) buildMaglevTable(backends, m, table);
        const digest = tableDigest(table);
        let ts = Infinity;
        let yardstick = Infinity;
        // The two sides alternate, so a slow spell on the host slows both, not one.
        for (let round = 0; round < MAGLEV_ROUNDS; round++) {
          const built = c.run(n, m, repeats);
          if (built.digest !== digest) throw new Error(`Maglev N=${n} M=${m}: the C build made another table than the TypeScript one`);
          yardstick = Math.min(yardstick, built.ms);
          const samples = Array.from({ length: repeats }, () => {
            const start = process.hrtime.bigint();
            buildMaglevTable(backends, m, table);
            return Number(process.hrtime.bigint() - start) / 1e6;
          });
          ts = Math.min(ts, median(samples));
        }
        results.push({ name: `N=${n} M=${m}`, value: ts, unit: 'ms', limit: yardstick, ratio: ts / yardstick, target: '<= 1.5x C', met: ts / yardstick <= 1.5 });
      }
    }
    return results;
  } finally {
    c.close();
  }
}

function show(title: string, results: Result[]): void {
  process.stdout.write(`\n${title}\n`);
  const fmt = (n: number | undefined, digits = 1) => (n === undefined ? '' : n.toFixed(digits));
  process.stdout.write(
    table(
      ['CASE', 'VALUE', 'UNIT', 'LIMIT', 'RATIO', 'TARGET', 'MET'],
      results.map((r) => [r.name, fmt(r.value, 2), r.unit, fmt(r.limit, 2), fmt(r.ratio, 2), r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO']),
    ) + '\n',
  );
}

async function main(): Promise<void> {
  const sections: Record<string, Result[]> = {};
  const h = new Harness();
  try {
    sections.packetCost = packetCost(h);
    show('1. Per-packet cost (BPF_PROG_TEST_RUN, restoring harness, tail call)', sections.packetCost);
    sections.scaling = scaling(h);
    show('3. Scaling (should stay flat)', sections.scaling);
  } finally {
    h.close();
  }
  sections.forwarding = await measureForwarding();
  show('2. Forwarding rate through veth (live-frames generator -> XDP on the peer -> back)', sections.forwarding);
  sections.maglev = maglev();
  show('4. Maglev table build: TypeScript vs the same algorithm in C (gcc -O2)', sections.maglev);
  sections.controlPlane = await measureControlPlane();
  show('5. Control plane', sections.controlPlane);

  const results = {
    date: new Date().toISOString(),
    machine: { kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    sections,
  };
  writeFileSync(packagePath('bench/results.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`\nwrote bench/results.json\n`);
}

// Run when executed, not when imported (tools reuse the harness).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  });
}
