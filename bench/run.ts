/**
 * `npm run bench`: what operators pick a load balancer for, measured side by side in
 * one run and reported as ratios (docs/benchmarks.md has the method). Prints tables
 * and writes bench/results.json. Speed targets live here, never in tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { DEFAULT_FLOWS, flowBucketCodec, type Outcome, OUTCOMES } from '../control/dataplane/codec.js';
import { flowTableBuckets } from '../control/dataplane/flow-table.js';
import type { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { buildMaglevTable } from '../control/maglev/maglev.js';
import { packagePath } from '../control/paths.js';
import { table } from '../control/cli/format.js';
import { balancer, MAC_LB, V4_SOURCE_OFFSET, V4_TCP } from './balancer.js';
import { measureControlPlane } from './control-plane.js';
import { measureForwarding } from './forwarding.js';
import { Harness, type HarnessOptions, type Result } from './harness.js';
import { benchBackends, compileCBuild, tableDigest } from './maglev-c.js';
import { frame, type FrameSpec } from './frames.js';
import { median } from './stats.js';

const MiB = 2 ** 20;
const formatBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);

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
type TablePath = 'miss' | 'hit' | 'share';

/**
 * Runs a measurement and checks every packet ended in `outcome` and took the table
 * path the case names: a bench must not time a drop path, or misses for hits, by
 * mistake. Returns the measurement and the share of table hits.
 */
function checked<T>(dp: TestDataplane, outcome: Outcome, table: TablePath | null, measure: () => T): { value: T; hitShare: number } {
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
  return { value, hitShare: packets ? hits / packets : 0 };
}

type PacketCase = [name: string, spec: FrameSpec, o: HarnessOptions, target: number | null, outcome: Outcome, table: TablePath | null];

/** One packet case against its yardstick, with the share of table hits where the case reports it. */
function packetCase(h: Harness, dp: TestDataplane, [name, spec, o, target, outcome, table]: PacketCase): Result[] {
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
    ...captureOff(h),
  ];
}

/** The hit path with the capture hooks (capture off) against the same code built without them, alternating. */
function captureOff(h: Harness): Result[] {
  const withHooks = balancer();
  const without = balancer({ objectPath: packagePath('bpf/build/xlb_balancer_nocapture.bpf.o') });
  try {
    const data = frame(V4_TCP, MAC_LB);
    const [hooked, plain] = checked(
      withHooks,
      'tx_dsr',
      'hit',
      () => checked(without, 'tx_dsr', 'hit', () => h.alternate([withHooks.program, without.program], data)).value,
    ).value;
    return [
      {
        name: 'v4 TCP hit (dsr), capture off, against no capture hooks',
        value: hooked! - plain!,
        unit: 'ns/packet',
        limit: plain!,
        target: '<= 1 ns more',
        met: hooked! - plain! <= 1,
      },
    ];
  } finally {
    withHooks.close();
    without.close();
  }
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
    results.push(
      ...packetCase(h, dp, [`${backends} backends/VIP: new flow`, V4_TCP, { flowOffset: V4_SOURCE_OFFSET }, null, 'tx_dsr', 'miss']),
    );
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
    const tableBytes = flowTableBuckets(2 * flows) * flowBucketCodec.size;
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
/** Builds before the first round, so every round times V8's optimised build code. */
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
        results.push({
          name: `N=${n} M=${m}`,
          value: ts,
          unit: 'ms',
          limit: yardstick,
          ratio: ts / yardstick,
          target: '<= 1.5x C',
          met: ts / yardstick <= 1.5,
        });
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
      results.map((r) => [
        r.name,
        fmt(r.value, 2),
        r.unit,
        fmt(r.limit, 2),
        fmt(r.ratio, 2),
        r.target ?? '',
        r.met === undefined ? '' : r.met ? 'yes' : 'NO',
      ]),
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
    machine: {
      kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      node: process.version,
    },
    sections,
  };
  writeFileSync(packagePath('bench/results.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`\nwrote bench/results.json\n`);
}

const USAGE = `usage: npm run bench  (node dist/bench/run.js, as root)

Measures per-packet cost, forwarding rate, scaling, the Maglev build and the control
plane; prints tables and writes bench/results.json. Takes no options.
`;

const args = process.argv.slice(2);
if (args.length > 0) {
  const help = args.length === 1 && (args[0] === '--help' || args[0] === '-h');
  (help ? process.stdout : process.stderr).write(USAGE);
  process.exit(help ? 0 : 2);
}
main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
