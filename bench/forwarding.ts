/**
 * Forwarding rate through a veth pair: a BPF_F_TEST_XDP_LIVE_FRAMES generator injects
 * frames out of gen0 (one namespace); the program under test on the peer lb0 (another
 * namespace, native XDP) sends them back with XDP_TX, and bench_bounce on gen0 counts
 * each one and sends it out again, so they circulate. Frames per second counted at
 * gen0: the balancer vs the MAC-swap reflector on lb0, same frames, same bouncer.
 *
 * Why circulate: on this kernel a live-frames run whose program returns XDP_TX takes
 * ~24 ms whenever repeat > 1, so the generator cannot sustain a rate by itself.
 */
import { BpfObject, type BpfProgram, ifNameToIndex } from '@xlb/native';
import { parseAddress, parseMac } from '../control/net/address.js';
import { FORWARD_DSR, IPPROTO_TCP } from '../control/dataplane/codec.js';
import { attachProgram, detachProgram } from '../control/dataplane/attach.js';
import { TestDataplane, testConfig } from '../control/dataplane/test-dataplane.js';
import { packagePath } from '../control/paths.js';
import { withCleanup } from '../scripts/lab/foreground.js';
import { inNamespace, Namespaces, nsRun, sh } from '../scripts/lab/netns.js';
import { frame } from './frames.js';
import type { Result } from './harness.js';

const DURATION_MS = 2000;
/** Alternating rounds per program; the best counts (other guests only ever slow it). */
const ROUNDS = 3;
const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
/** Frames in flight: one live-frames batch. */
const IN_FLIGHT = 64;
/** Flows of the many-flows case: a quarter of the balancer's table, which keeps them all. */
const MANY_FLOWS = 16384;

/** The namespaces go however the bench ends (see withCleanup). */
export async function measureForwarding(): Promise<Result[]> {
  const namespaces = new Namespaces('bench');
  return withCleanup(
    () => forwarding(namespaces),
    () => namespaces.cleanup(),
  );
}

async function forwarding(namespaces: Namespaces): Promise<Result[]> {
  const bench = new BpfObject(packagePath('bpf/build/bench.bpf.o'));
  const dp = TestDataplane.open({ maxFlows: 65536, ringSize: 251 });
  try {
    const gen = namespaces.create('gen');
    const lb = namespaces.create('lb');
    sh('ip', ['link', 'add', 'gen0', 'netns', gen, 'type', 'veth', 'peer', 'name', 'lb0', 'netns', lb]);
    nsRun(gen, 'ip', ['link', 'set', 'gen0', 'up']);
    nsRun(lb, 'ip', ['link', 'set', 'lb0', 'up']);
    const mac = (ns: string, dev: string) => JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', dev]))[0].address as string;
    const genMac = mac(gen, 'gen0');
    const lbMac = mac(lb, 'lb0');

    const bounce = bench.program('bench_bounce');
    const counter = bench.map('bench_counter_v1');
    const returned = () => {
      const v = counter.lookup(Buffer.alloc(4))!;
      let sum = 0;
      for (let i = 0; i < v.length; i += 8) sum += Number(v.readBigUInt64LE(i));
      return sum;
    };

    // The balancer's one backend is the generator itself, so forwarded frames come back.
    dp.setConfig(testConfig());
    dp.setVip(
      { family: 4, address: parseAddress('198.19.0.1').bytes, port: 80, proto: IPPROTO_TCP },
      { id: 0, flags: 0, forwarding: FORWARD_DSR },
    );
    dp.setBackend(0, { family: 4, address: parseAddress('198.18.0.11').bytes, mac: parseMac(genMac), vipId: 0 });
    dp.setRing(0, new Uint32Array(251));

    const generate = bench.program('bench_generate');
    const data = frame({ family: 4, proto: 'tcp', src: '198.18.0.10', dst: '198.19.0.1', dport: 80 }, lbMac, genMac);
    const bounceFlows = bench.map('bench_bounce_flows_v1');
    const run = async (program: BpfProgram, flows = 0) => {
      bounceFlows.update(Buffer.alloc(4), Buffer.from(new Uint32Array([flows]).buffer));
      inNamespace(lb, () => attachProgram('lb0', program, 'native'));
      inNamespace(gen, () => {
        attachProgram('gen0', bounce, 'native');
        generate.testRun({ data, repeat: IN_FLIGHT, flags: BPF_F_TEST_XDP_LIVE_FRAMES, ifindex: ifNameToIndex('gen0') });
      });
      // Let the circulation settle, then count over the window.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = returned();
      const start = Date.now();
      await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
      const back = returned() - before;
      const ms = Date.now() - start;
      // Stop the circulation: without the bouncer the frames go to gen0's stack and die.
      inNamespace(gen, () => detachProgram('gen0', 'native'));
      return { mpps: back / ms / 1000, back };
    };

    const reflector = bench.program('bench_reflect');
    // Per case, the best of ROUNDS alternating runs of the reflector and the balancer,
    // the bouncer set alike for both.
    const best = { limit: 0, oneFlow: 0, limitMany: 0, manyFlows: 0 };
    const manyFlowsTable = { hits: 0, misses: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      best.limit = Math.max(best.limit, (await run(reflector)).mpps);
      best.oneFlow = Math.max(best.oneFlow, (await run(dp.program)).mpps);
      // Connection-table hits spread over the table, as with many clients: the
      // bouncer gives each frame it sends back the next of MANY_FLOWS flows.
      best.limitMany = Math.max(best.limitMany, (await run(reflector, MANY_FLOWS)).mpps);
      const before = dp.vipStats(0);
      best.manyFlows = Math.max(best.manyFlows, (await run(dp.program, MANY_FLOWS)).mpps);
      const after = dp.vipStats(0);
      manyFlowsTable.hits += after.flow_hits - before.flow_hits;
      manyFlowsTable.misses += after.flow_misses - before.flow_misses;
    }
    for (const p of [bounce, generate, reflector]) p.close();
    for (const m of [counter, bounceFlows]) m.close();
    const { hits, misses } = manyFlowsTable;
    const balancer = (name: string, mpps: number, limit: number): Result => ({
      name,
      value: mpps,
      unit: 'Mpps',
      limit,
      ratio: mpps / limit,
      target: '>= 0.8x reflector',
      met: mpps / limit >= 0.8,
    });
    return [
      { name: 'limit: MAC-swap reflector on lb0', value: best.limit, unit: 'Mpps' },
      balancer('balancer on lb0, dsr, one flow', best.oneFlow, best.limit),
      { name: `limit: the reflector, frames cycling ${MANY_FLOWS.toLocaleString('en')} flows`, value: best.limitMany, unit: 'Mpps' },
      balancer(`balancer on lb0, dsr, ${MANY_FLOWS.toLocaleString('en')} flows`, best.manyFlows, best.limitMany),
      { name: '  of which connection-table hits', value: (100 * hits) / (hits + misses), unit: '%' },
    ];
  } finally {
    dp.close();
    bench.close();
  }
}
