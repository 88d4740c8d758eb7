/**
 * `npm run bench`: what operators pick a load balancer for, measured side by side in
 * one run and reported as ratios (docs/benchmarks.md has the method). Prints tables
 * and writes bench/results.json. Speed targets live here, never in tests.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { DEFAULT_FLOWS, flowBucketCodec } from '../control/dataplane/codec.js';
import { flowTableBuckets } from '../control/dataplane/flow-table.js';
import { buildMaglevTable } from '../control/maglev/maglev.js';
import { packagePath } from '../control/paths.js';
import { table } from '../control/cli/format.js';
import { balancer, MAC_LB, V4_SOURCE_OFFSET, V4_TCP } from './balancer.js';
import { measureControlPlane } from './control-plane.js';
import { measureForwarding } from './forwarding.js';
import { measureFlood } from './flood.js';
import { Harness, type Result } from './harness.js';
import { benchBackends, compileCBuild, tableDigest } from './maglev-c.js';
import { frame } from './frames.js';
import { checked, type PacketCase, packetCase } from './packet-case.js';
import {
  mergeResults,
  parseResults,
  parseSelection,
  type RunResults,
  SECTION_NAMES,
  type SectionName,
  type Selection,
  UsageError,
} from './sections.js';
import { median } from './stats.js';

const MiB = 2 ** 20;
const formatBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);

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

/** What a section's measurement may use: the harness (opened on first use), and where to put its summary. */
interface SectionContext {
  harness(): Harness;
  summaries: RunResults['summaries'];
}

/** Each section's title and measurement, by the name results.json keys it by. */
const SECTIONS: Record<SectionName, { title: string; measure: (c: SectionContext) => Result[] | Promise<Result[]> }> = {
  packetCost: { title: '1. Per-packet cost (BPF_PROG_TEST_RUN, restoring harness, tail call)', measure: (c) => packetCost(c.harness()) },
  scaling: { title: '3. Scaling (should stay flat)', measure: (c) => scaling(c.harness()) },
  forwarding: { title: '2. Forwarding rate through veth (live-frames generator -> XDP on the peer -> back)', measure: measureForwarding },
  maglev: { title: '4. Maglev table build: TypeScript vs the same algorithm in C (gcc -O2)', measure: maglev },
  controlPlane: { title: '5. Control plane', measure: measureControlPlane },
  flood: {
    title: '6. Established flows through a random-source SYN flood and a backend added (default table)',
    measure: (c) => {
      const { rows, summary } = measureFlood(c.harness());
      c.summaries.flood = summary;
      return rows;
    },
  },
};

const RESULTS = packagePath('bench/results.json');

async function main(names: readonly SectionName[]): Promise<void> {
  // Read first: a file the merge cannot keep stops the bench before it measures.
  const last = existsSync(RESULTS) ? parseResults(readFileSync(RESULTS, 'utf8')) : null;
  const run: RunResults = { sections: {}, summaries: {} };
  let harness: Harness | undefined;
  try {
    const context: SectionContext = { harness: () => (harness ??= new Harness()), summaries: run.summaries };
    for (const name of names) {
      const { title, measure } = SECTIONS[name];
      const rows = await measure(context);
      run.sections[name] = rows;
      show(title, rows);
    }
  } finally {
    harness?.close();
  }
  const machine = {
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
  };
  const results = mergeResults(last, run, new Date().toISOString(), machine);
  writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`\nwrote bench/results.json (${names.join(', ')}; the other sections as they were)\n`);
}

const USAGE = `usage: npm run bench [-- SECTION...]  (node dist/bench/run.js [SECTION...], as root)

Measures per-packet cost, forwarding rate, scaling, the Maglev build, the control
plane and established flows through a SYN flood; prints tables and writes
bench/results.json. With SECTION names, runs only those, in the order given, and
keeps the other sections' last results in bench/results.json.

Sections: ${SECTION_NAMES.join(', ')}
`;

let selection: Selection;
try {
  selection = parseSelection(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`bench: ${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (selection.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
main(selection.sections).catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
