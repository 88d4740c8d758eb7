/**
 * `xlb trace` against a real `xlb serve` in the netns lab: it names the backend each
 * real connection reached, before the flow exists (the ring's pick) and after (the
 * connection table's hit); it reports the packet walk's outcome for a non-VIP, a
 * fragment, malformed packets and an echo request; its output shows the dsr MACs and
 * the ipip outer header; and the balancer's maps and counters stay byte-identical
 * through traces.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BpfMap } from '@xlb/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { configCodec, MAPS, OUTCOMES } from '../control/dataplane/codec.js';
import { BALANCER_PINS } from '../control/dataplane/pins.js';
import { packagePath } from '../control/paths.js';
import type { VipView } from '../control/controller/views.js';
import type { TraceView } from '../control/trace/schema.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';
import { CLI } from './lib/cli.js';
import { ETH_P_IP, ethernet, ipv4, PROTO, tcp } from './lib/packet.js';

const run = promisify(execFile);
const FIXED_PORT_CLIENT = packagePath('scripts/lab/fixed-port-client.mjs');
const FLOWS = 200;
const FIRST_PORT = 42000;
const DSR_VIP = LAB.vips4[0];
const IPIP_VIP = LAB.vips4[1];

let lab: Lab;
let daemon: DaemonProcess;

beforeAll(async () => {
  lab = await Lab.create('trace');
  daemon = await lab.startDaemon();
  for (const [vip, forwarding] of [
    [DSR_VIP, 'dsr'],
    [IPIP_VIP, 'ipip'],
  ] as const) {
    await api('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding });
    for (const n of BACKENDS) await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)), {});
  }
  // Settled: every backend's MAC resolved and in its ring, so the rings stay as they are.
  const deadline = Date.now() + 20_000;
  const settled = (vips: VipView[]) => vips.every((v) => v.ringBackends === BACKENDS.length && v.backends.every((b) => b.mac !== null));
  while (!settled((await api<{ vips: VipView[] }>('GET', '/v1/vips')).vips)) {
    if (Date.now() > deadline) throw new Error('the VIPs did not settle in 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}, 60_000);
afterAll(() => lab?.destroy());

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await daemon.api.request<T>(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

type Packet = { frame: string } | { protocol: 'tcp' | 'udp' | 'icmp'; source: string; destination: string };
const traces = async (packets: Packet[]) => (await api<{ traces: TraceView[] }>('POST', '/v1/trace', { packets })).traces;
const flowFrom = (port: number, vip: string = DSR_VIP): Packet => ({
  protocol: 'tcp',
  source: `${LAB.client4}:${port}`,
  destination: `${vip}:${LAB.tcpPort}`,
});

/** `xlb trace ...args --json`, a real process. */
async function cliTrace(...args: string[]): Promise<TraceView> {
  const { stdout } = await run(process.execPath, [CLI, 'trace', ...args, '--api', `unix:${lab.lbPaths().socket}`, '--json']);
  return JSON.parse(stdout) as TraceView;
}

/** The backend address each source port's connection reached, by the greeting of the backend that answered. */
async function connectFrom(first: number, count: number): Promise<Map<number, string>> {
  const { stdout } = await run('ip', [
    'netns',
    'exec',
    lab.ns.client,
    process.execPath,
    FIXED_PORT_CLIENT,
    DSR_VIP,
    String(LAB.tcpPort),
    String(first),
    String(count),
  ]);
  const answers = JSON.parse(stdout) as Record<string, string>;
  return new Map(Object.entries(answers).map(([port, name]) => [Number(port), LAB.backend4(Number(name.slice(1)))]));
}

/**
 * Every map of the balancer as bytes: every entry (every CPU's value of a per-CPU map),
 * every ring's slots, and the outcome counters one by one.
 */
const fieldRange = (field: keyof typeof configCodec.offsets) => [configCodec.offsets[field], configCodec.offsets[field] + 4] as const;

function dumpMaps(): Map<string, Buffer> {
  const dump = new Map<string, Buffer>();
  // The capture's perf event array holds file descriptors, not data: nothing to read.
  for (const name of BALANCER_PINS.filter((pin) => pin !== MAPS.capture)) {
    const map = BpfMap.fromPin(join(lab.lbPaths().bpffs, name));
    try {
      const { count, keys, values } = map.lookupAll();
      // The daemon ticks the connection table's clock every second: the config's other bytes are compared.
      if (name === MAPS.config) for (const field of ['clock', 'established_mark'] as const) values.fill(0, ...fieldRange(field));
      dump.set(name, Buffer.concat([keys, values]));
      if (name === MAPS.counters) {
        const size = values.length / count;
        OUTCOMES.forEach((outcome, i) => dump.set(`${name}.${outcome}`, values.subarray(i * size, (i + 1) * size)));
      }
      if (name !== MAPS.rings) continue;
      for (let at = 0; at < values.length; at += 4) {
        const ring = BpfMap.fromId(values.readUInt32LE(at));
        dump.set(`${name}[${at / 4}]`, ring.readMapped());
        ring.close();
      }
    } finally {
      map.close();
    }
  }
  return dump;
}

const frame = (o: { mf?: boolean; ihl?: number; dataOffset?: number; dst?: string }) => {
  const dst = o.dst ?? DSR_VIP;
  const segment = tcp({ src: LAB.client4, dst, sport: 40000, dport: LAB.tcpPort, ...(o.dataOffset ? { dataOffset: o.dataOffset } : {}) });
  return ethernet(
    '02:00:00:00:00:02',
    '02:00:00:00:00:01',
    ETH_P_IP,
    ipv4({ src: LAB.client4, dst, protocol: PROTO.TCP, payload: segment, mf: o.mf ?? false, ...(o.ihl ? { ihl: o.ihl } : {}) }),
  ).toString('hex');
};
const OTHER_PACKETS: [Packet, string][] = [
  [{ protocol: 'tcp', source: `${LAB.client4}:40000`, destination: `${LAB.backend4(1)}:80` }, 'pass_not_vip'],
  [{ frame: frame({ mf: true }) }, 'drop_fragment'],
  [{ frame: frame({ ihl: 4 }) }, 'drop_malformed_ip'],
  [{ frame: frame({ dataOffset: 15 }) }, 'drop_malformed_l4'],
  [{ protocol: 'icmp', source: LAB.client4, destination: DSR_VIP }, 'tx_icmp_echo_reply'],
];

describe('xlb trace in the lab', () => {
  test(`names the backend each of ${FLOWS} real connections reached: the ring's pick before, the table's hit after`, async () => {
    const ports = Array.from({ length: FLOWS }, (_, i) => FIRST_PORT + i);
    const viaCli = ports.slice(0, 3);
    const cliBefore = await Promise.all(viaCli.map((port) => cliTrace('tcp', `${LAB.client4}:${port}`, `${DSR_VIP}:${LAB.tcpPort}`)));
    const before = await traces(ports.map((port) => flowFrom(port)));

    const reached = await connectFrom(FIRST_PORT, FLOWS);

    const after = await traces(ports.map((port) => flowFrom(port)));
    const cliAfter = await Promise.all(viaCli.map((port) => cliTrace('tcp', `${LAB.client4}:${port}`, `${DSR_VIP}:${LAB.tcpPort}`)));
    ports.forEach((port, i) => {
      const backend = reached.get(port);
      expect(before[i]).toMatchObject({ outcome: 'tx_dsr', table: { result: 'miss' }, ring: { backend: { address: backend } } });
      expect(before[i]!.backend?.address, `port ${port} before`).toBe(backend);
      // The ring still gives the flow's slot to the same backend (nothing changed), read to show so.
      expect(after[i]).toMatchObject({
        outcome: 'tx_dsr',
        table: { result: 'hit', backend: { address: backend }, state: expect.stringMatching(/^(established|closing)$/) },
        ring: { backend: { address: backend } },
      });
      expect(after[i]!.backend?.address, `port ${port} after`).toBe(backend);
    });
    viaCli.forEach((port, i) => {
      expect(cliBefore[i]).toMatchObject({ table: { result: 'miss' }, backend: { address: reached.get(port) } });
      expect(cliAfter[i]).toMatchObject({ table: { result: 'hit' }, backend: { address: reached.get(port) } });
    });
    // Every backend took some of the flows: the ring's picks were not all one.
    expect(new Set(reached.values()).size).toBe(BACKENDS.length);
  }, 120_000);

  test('a non-VIP, a fragment, malformed packets and an echo request: the outcome the packet walk documents', async () => {
    const results = await traces(OTHER_PACKETS.map(([packet]) => packet));
    results.forEach((result, i) =>
      expect({ outcome: result.outcome, vip: result.vip }).toEqual({ outcome: OTHER_PACKETS[i]![1], vip: null }),
    );
    expect(results.map((r) => r.verdict)).toEqual(['pass', 'drop', 'drop', 'drop', 'tx']);
    const viaCli = await cliTrace('--frame', frame({ mf: true }));
    expect(viaCli.outcome).toBe('drop_fragment');
  });

  test('the output: dsr rewrites the MACs to the backend, ipip pushes a header from the LB to the backend', async () => {
    const lbMac = nsRun(lab.ns.lb, 'cat', ['/sys/class/net/eth0/address']).trim();
    const [dsr, ipip] = await traces([flowFrom(41000), flowFrom(41000, IPIP_VIP)]);
    const dsrBackend = BACKENDS.find((n) => LAB.backend4(n) === dsr!.backend!.address)!;
    expect(dsr!.output).toMatchObject({ ethernet: { source: lbMac, destination: lab.backendMacs[dsrBackend - 1] }, outer: null });
    expect(dsr!.output!.frame.slice(0, 24)).toBe((lab.backendMacs[dsrBackend - 1]! + lbMac).replaceAll(':', ''));

    const ipipBackend = BACKENDS.find((n) => LAB.backend4(n) === ipip!.backend!.address)!;
    expect(ipip).toMatchObject({ outcome: 'tx_ipip', verdict: 'tx', vip: { address: IPIP_VIP, forwarding: 'ipip' } });
    expect(ipip!.output).toMatchObject({
      ethernet: { destination: lab.backendMacs[ipipBackend - 1] },
      outer: { source: LAB.lb4, destination: LAB.backend4(ipipBackend), protocol: PROTO.IPIP },
    });
    // The inner packet follows the outer header whole: the client's SYN to the VIP.
    const inner = Buffer.from(ipip!.output!.frame, 'hex').subarray(14 + 20);
    expect([inner.subarray(12, 16).join('.'), inner.subarray(16, 20).join('.')]).toEqual([LAB.client4, IPIP_VIP]);
  });

  test('the maps and counters are byte-identical before and after many traces', async () => {
    // New flows (table misses) and recorded ones (hits) of both VIPs, and the other packets.
    const packets = (round: number) => [
      ...Array.from({ length: FLOWS }, (_, i) => flowFrom(50000 + round * FLOWS + i)),
      ...Array.from({ length: FLOWS }, (_, i) => flowFrom(50000 + round * FLOWS + i, IPIP_VIP)),
      ...Array.from({ length: 20 }, (_, i) => flowFrom(FIRST_PORT + i)),
      ...OTHER_PACKETS.map(([packet]) => packet),
    ];
    // The host's own ARP and neighbour discovery reach the balancer too: a round in which
    // only their counters moved is tried again. A dry run that writes does so every round.
    const background = [`${MAPS.counters}.pass_non_ip`, `${MAPS.counters}.pass_not_vip`, MAPS.counters];
    let differing: string[] = [];
    for (let round = 0; round < 5; round++) {
      const before = dumpMaps();
      await traces(packets(round));
      const after = dumpMaps();
      expect([...after.keys()]).toEqual([...before.keys()]);
      differing = [...before].filter(([name, bytes]) => !bytes.equals(after.get(name)!)).map(([name]) => name);
      if (!differing.every((name) => background.includes(name))) break;
      if (differing.length === 0) break;
    }
    expect(differing).toEqual([]);
  });
});
