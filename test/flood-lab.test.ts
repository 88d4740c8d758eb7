/**
 * A real `xlb serve` in the netns lab meets a SYN flood as an operator would: real TCP
 * connections to two VIPs (dsr and ipip) of four backends each are held open and idle
 * while millions of SYNs from random sources sweep the default connection table many
 * times over, and an operator adds a fifth backend to each (`xlb backend add`)
 * meanwhile. Every held connection must still reach the backend it began with: none
 * moved, reset or timed out.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { StatsView, VipView } from '../control/controller/views.js';
import { type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';
import { CLI, run } from './lib/cli.js';
import { HeldConnections, type Round } from './lib/held-connections.js';
import { SynFlood } from './lib/syn-flood.js';
import { until } from './lib/until.js';

const VIPS = [
  { address: LAB.vips4[0], forwarding: 'dsr' },
  { address: LAB.vips4[1], forwarding: 'ipip' },
] as const;
const FIRST = [1, 2, 3, 4];
const ADDED = 5;
/** Connections held to each VIP. */
const HELD = 400;
/** The default table holds 65,536 flows: this many SYNs from distinct sources sweep it about 60 times. */
const FLOOD_FRAMES = 4_000_000;

/** New flows a second over all CPUs that the daemon calls a flood. */
const FLOOD_THRESHOLD = 20_000;
let lab: Lab;
let daemon: DaemonProcess;
let flood: SynFlood | undefined;
const held: HeldConnections[] = [];

beforeAll(async () => {
  lab = await Lab.create('flood', { backends: FIRST.length + 1 }, (started) => (lab = started));
  // A threshold the flood clears many times over however slow the run (its rate is not this test's).
  daemon = await lab.startDaemon(['--flood-threshold', String(FLOOD_THRESHOLD)]);
  // The flood's SYNs go on to the backends: their reverse-path filter drops them (the
  // backends have no route to the flood's sources) before TCP would answer them.
  for (const ns of lab.ns.backends) nsRun(ns, 'sysctl', ['-qw', 'net.ipv4.conf.eth0.rp_filter=1']);
  for (const { address, forwarding } of VIPS) {
    await daemon.call('PUT', vipPath('tcp', address, LAB.tcpPort), { forwarding });
    for (const n of FIRST) await daemon.call('PUT', vipPath('tcp', address, LAB.tcpPort, LAB.backend4(n)), {});
    await until(
      () => backendList(address),
      (view) => inRing(view).length === FIRST.length,
      `${address}'s first backends in the ring`,
      20_000,
    );
  }
  const lbMac = JSON.parse(nsRun(lab.ns.lb, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address as string;
  flood = new SynFlood(
    lab.ns.sw,
    'p-lb',
    lbMac,
    VIPS.map(({ address }) => ({ address, port: LAB.tcpPort })),
  );
}, 60_000);

afterAll(() => {
  for (const connections of held) connections.close();
  flood?.close();
  lab?.destroy();
});

const api = () => ['--api', `unix:${lab.lbPaths().socket}`];

/** `xlb backend ls --json`. */
async function backendList(vip: string): Promise<Pick<VipView, 'backends'>> {
  const { stdout } = await run(process.execPath, [CLI, 'backend', 'ls', 'tcp', vip, String(LAB.tcpPort), ...api(), '--json']);
  return JSON.parse(stdout) as Pick<VipView, 'backends'>;
}

/** The backends that take new flows: in the ring, their MAC resolved. */
const inRing = (view: Pick<VipView, 'backends'>) => view.backends.filter((b) => b.inRing && b.mac !== null).map((b) => b.address);

/** `xlb backend add`, then `xlb backend ls` until the backend takes new flows. */
async function addBackend(vip: string, address: string): Promise<void> {
  await run(process.execPath, [CLI, 'backend', 'add', 'tcp', vip, String(LAB.tcpPort), address, ...api()]);
  await until(
    () => backendList(vip),
    (view) => inRing(view).includes(address),
    `${address} in ${vip}'s ring`,
    20_000,
  );
}

async function stats(): Promise<StatsView> {
  const { stdout } = await run(process.execPath, [CLI, 'stats', ...api(), '--json']);
  return JSON.parse(stdout) as StatsView;
}

/** New flows the balancer recorded for the VIPs (`xlb stats`). */
async function newFlows(): Promise<number> {
  const { vips } = await stats();
  return vips.filter((v) => VIPS.some(({ address }) => address === v.address)).reduce((sum, v) => sum + v.flowMisses, 0);
}

/** How a round of answers compares with the first: connections answered by another backend, and failed. */
function compare(first: Round, again: Round) {
  return {
    moved: again.names.filter((name, i) => name !== null && name !== first.names[i]).length,
    failed: again.names.filter((name) => name === null).length,
    errors: again.errors,
  };
}

test(`${HELD} held connections to each VIP keep their backends through a SYN flood and a backend added meanwhile`, async () => {
  const newFlowsBefore = await newFlows();
  const first: Round[] = [];
  for (const { address } of VIPS) {
    const opened = await HeldConnections.open(lab.ns.client, address, LAB.tcpPort, HELD);
    held.push(opened.held);
    first.push(opened.first);
    expect(opened.first.errors).toEqual([]);
    for (const n of FIRST) expect(opened.first.names).toContain(`b${n}`);
  }

  // The operator adds the fifth backend while the flood runs; the flood goes on until
  // it has sent FLOOD_FRAMES and the backend takes new flows at both VIPs.
  const added = Promise.all(VIPS.map(({ address }) => addBackend(address, LAB.backend4(ADDED))));
  const sent = await flood!.run(FLOOD_FRAMES, added);
  await added;
  // The balancer saw and recorded the flood (the sender may drop a little when the receiver falls behind).
  expect(await newFlows()).toBeGreaterThanOrEqual(newFlowsBefore + 0.9 * sent);
  // The daemon saw a flood (it lasts until 10 s of calm), and the established connections were never taken.
  const after = await stats();
  expect(after.flood).toMatchObject({ active: true, threshold: FLOOD_THRESHOLD });
  expect(after.flood.peakPerSecond).toBeGreaterThanOrEqual(FLOOD_THRESHOLD);
  expect(after.flowTable.evictions.established).toBe(0);
  expect(after.flowTable.evictions.new).toBeGreaterThan(0.5 * sent);

  const kept = [];
  for (const [i, { address }] of VIPS.entries()) kept.push({ vip: address, ...compare(first[i]!, await held[i]!.ask()) });
  expect(kept).toEqual(VIPS.map(({ address }) => ({ vip: address, moved: 0, failed: 0, errors: [] })));

  // The ring did change: new connections reach the added backend.
  for (const { address } of VIPS) {
    const fresh = await lab.client('tcp', address, 200, 16);
    expect(fresh.ok).toBe(200);
    expect(fresh.byBackend[`b${ADDED}`]).toBeGreaterThan(0);
  }
}, 60_000);
