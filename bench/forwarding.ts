/**
 * Forwarding rate through a veth pair: a BPF_F_TEST_XDP_LIVE_FRAMES generator sends
 * frames out of gen0 (one namespace); the program under test on the peer lb0 (another
 * namespace, native XDP) sends them back with XDP_TX, where bench_count counts and
 * drops them. Balancer vs the MAC-swap reflector, same generator, same frames.
 */
import { BpfObject, type BpfProgram, ifNameToIndex, xdpAttach } from '@xlb/native';
import { parseAddress, parseMac } from '../control/dataplane/address.js';
import { FORWARD_DSR, IPPROTO_TCP } from '../control/dataplane/codec.js';
import { attachProgram, Dataplane } from '../control/dataplane/dataplane.js';
import { packagePath } from '../control/paths.js';
import { inNamespace, Namespaces, nsRun, sh } from '../scripts/lab/netns.js';
import { frame } from './frames.js';
import type { Result } from './run.js';

const DURATION_MS = 2000;
const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
/** Frames per live-frames call: on this kernel a run whose program returns XDP_TX sends one batch. */
const BATCH = 64;

export async function measureForwarding(): Promise<Result[]> {
  const namespaces = new Namespaces('bench');
  const bench = new BpfObject(packagePath('bpf/build/bench.bpf.o'));
  const dp = Dataplane.open({ maxFlows: 65536, ringSize: 251 });
  try {
    const gen = namespaces.create('gen');
    const lb = namespaces.create('lb');
    sh('ip', ['link', 'add', 'gen0', 'netns', gen, 'type', 'veth', 'peer', 'name', 'lb0', 'netns', lb]);
    nsRun(gen, 'ip', ['link', 'set', 'gen0', 'up']);
    nsRun(lb, 'ip', ['link', 'set', 'lb0', 'up']);
    const mac = (ns: string, dev: string) => JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', dev]))[0].address as string;
    const genMac = mac(gen, 'gen0');
    const lbMac = mac(lb, 'lb0');

    const count = bench.program('bench_count');
    const counter = bench.map('bench_counter_v1');
    inNamespace(gen, () => xdpAttach(ifNameToIndex('gen0'), count, { mode: 'native' }));
    const returned = () => {
      const v = counter.lookup(Buffer.alloc(4))!;
      let sum = 0;
      for (let i = 0; i < v.length; i += 8) sum += Number(v.readBigUInt64LE(i));
      return sum;
    };

    // The balancer's one backend is the generator itself, so forwarded frames come back.
    dp.setConfig({ hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 });
    dp.setVip({ family: 4, address: parseAddress('198.19.0.1').bytes, port: 80, proto: IPPROTO_TCP }, { id: 0, flags: 0, forwarding: FORWARD_DSR });
    dp.setBackend(0, { family: 4, address: parseAddress('198.18.0.11').bytes, mac: parseMac(genMac), vipId: 0 });
    dp.setRing(0, new Uint32Array(251));

    const generate = bench.program('bench_generate');
    const data = frame({ family: 4, proto: 'tcp', src: '198.18.0.10', dst: '198.19.0.1', dport: 80 }, lbMac, genMac);
    const run = (program: BpfProgram) => {
      inNamespace(lb, () => attachProgram('lb0', program, 'native'));
      const before = returned();
      const { sent, ms } = inNamespace(gen, () => {
        const ifindex = ifNameToIndex('gen0');
        const start = Date.now();
        let calls = 0;
        while (Date.now() - start < DURATION_MS) {
          generate.testRun({ data, repeat: BATCH, flags: BPF_F_TEST_XDP_LIVE_FRAMES, ifindex });
          calls++;
        }
        return { sent: calls * BATCH, ms: Date.now() - start };
      });
      const back = returned() - before;
      return { mpps: back / ms / 1000, sent, back };
    };

    const reflector = bench.program('bench_reflect');
    const limit = run(reflector);
    const balancer = run(dp.program);
    const ratio = balancer.mpps / limit.mpps;
    for (const p of [count, generate, reflector]) p.close();
    counter.close();
    return [
      { name: `limit: MAC-swap reflector (${limit.back}/${limit.sent} frames back)`, value: limit.mpps, unit: 'Mpps' },
      { name: `balancer, dsr, one flow (${balancer.back}/${balancer.sent} frames back)`, value: balancer.mpps, unit: 'Mpps', limit: limit.mpps, ratio, target: '>= 0.8x reflector', met: ratio >= 0.8 },
    ];
  } finally {
    dp.close();
    bench.close();
    namespaces.cleanup();
  }
}
