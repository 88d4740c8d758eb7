/**
 * Health checks through the forwarding path, in the netns lab with `xlb serve`: a
 * backend that lost the VIP on lo (dsr and ipip) or its decap program (ipip) goes
 * down under `via: "vip"`, stays up under `via: "direct"`, takes no new client
 * connection while down, and comes back once restored. IPv4 and IPv6. A probe a
 * policy rule routes past xlb_probe fails. The LB's own route to the VIP (a dead next
 * hop, none, one out of another interface) does not carry probes: xlb's table does,
 * and `xlb down` removes it. A backend that forwards the probe on instead of taking it (no VIP on lo,
 * forwarding on, a route to another backend holding the VIP) does not answer it: the
 * probe leaves with TTL 1.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { StatsView, VipView } from '../control/controller/views.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';
import { PROBE_NEXT_HOP, PROBE_ROUTE_REPAIR_MS, PROBE_TABLE } from '../control/daemon/probe-routes.js';
import { CLI, run } from './lib/cli.js';

const INTERVAL_MS = 200;
const TIMEOUT_MS = 150;
const FALL = 2;
/** interval x fall, the first failure up to an interval (+10% jitter) late, the timeout, and slack for a loaded machine. */
const DOWN_WITHIN_MS = INTERVAL_MS * 1.1 * (FALL + 1) + TIMEOUT_MS + 1000;
const CHECK = { type: 'tcp', intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, rise: 1, fall: FALL } as const;
/** The direct-checked twin of each VIP: same address and backends, another port, its checks at port 80 of each backend. */
const DIRECT_PORT = 8080;

let lab: Lab;
let daemon: DaemonProcess;

beforeAll(async () => {
  lab = await Lab.create('via', { secondLb: true });
  daemon = await lab.startDaemon();
});
afterAll(() => lab?.destroy());

const api = (method: string, path: string, body?: unknown) => daemon.call<VipView>(method, path, body);

/** Polls until `done` holds for the VIP's view, or fails after `timeoutMs`; returns how long it took. */
async function until(vip: string, port: number, done: (v: VipView) => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const view = await api('GET', vipPath('tcp', vip, port));
    if (done(view)) return Date.now() - start;
    if (Date.now() - start > timeoutMs)
      throw new Error(`${vip}:${port} never got there in ${timeoutMs} ms: ${JSON.stringify(view.backends)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const backendOf = (view: VipView, address: string) => view.backends.find((b) => b.address === address)!;

type Case = [forwarding: 'dsr' | 'ipip', family: 4 | 6, vip: string];
const cases: Case[] = [
  ['dsr', 4, LAB.vips4[1]],
  ['ipip', 4, LAB.vips4[2]],
  ['dsr', 6, LAB.vips6[0]],
  ['ipip', 6, LAB.vips6[1]],
];

const allUp = (v: VipView) => v.backends.length === BACKENDS.length && v.backends.every((b) => b.health === 'up' && b.inRing);

/** Puts a VIP at `port` with every backend (`address(n)`), checked by `healthCheck`; resolves once all are up. */
async function putVipAllUp(vip: string, port: number, forwarding: Case[0], healthCheck: object, address: (n: number) => string) {
  await api('PUT', vipPath('tcp', vip, port), { forwarding, healthCheck });
  for (const n of BACKENDS) await api('PUT', vipPath('tcp', vip, port, address(n)));
  await until(vip, port, allUp, 10_000);
}

describe('checks through the VIP', () => {
  test.each(cases)(
    '%s IPv%i: a backend that cannot serve the VIP goes down via vip, stays up direct, and comes back',
    async (forwarding, family, vip) => {
      const address = (n: number) => (family === 4 ? LAB.backend4(n) : LAB.backend6(n));
      const b1 = address(1);
      await putVipAllUp(vip, LAB.tcpPort, forwarding, CHECK, address);
      await putVipAllUp(vip, DIRECT_PORT, forwarding, { ...CHECK, port: LAB.tcpPort, via: 'direct' }, address);
      expect((await api('GET', vipPath('tcp', vip, LAB.tcpPort))).backends.map((b) => b.via)).toEqual(['vip', 'vip', 'vip']);

      /** b1 goes down via vip within the bound, naming the path; its direct check goes on passing; no new flow reaches it. */
      const expectB1DownViaVipOnly = async () => {
        const brokenAt = Date.now();
        const ms = await until(vip, LAB.tcpPort, (v) => backendOf(v, b1).health === 'down' && !backendOf(v, b1).inRing, 10_000);
        expect(ms).toBeLessThan(DOWN_WITHIN_MS);
        expect(backendOf(await api('GET', vipPath('tcp', vip, LAB.tcpPort)), b1).healthReason).toBe(
          `no answer in ${TIMEOUT_MS} ms through ${forwarding} to ${b1}`,
        );
        await until(vip, DIRECT_PORT, (v) => Date.parse(backendOf(v, b1).lastCheckAt ?? '') > brokenAt + TIMEOUT_MS, 5_000);
        expect(backendOf(await api('GET', vipPath('tcp', vip, DIRECT_PORT)), b1)).toMatchObject({
          health: 'up',
          healthReason: null,
          via: 'direct',
        });
        const summary = await lab.client('tcp', vip, 60);
        expect(summary.errors).toEqual([]);
        expect(summary.ok).toBe(60);
        expect(Object.keys(summary.byBackend).sort()).toEqual(['b2', 'b3']);
      };
      const expectB1BackUp = async () => {
        await until(vip, LAB.tcpPort, allUp, 5_000);
        const summary = await lab.client('tcp', vip, 60);
        expect(summary.ok).toBe(60);
        expect(Object.keys(summary.byBackend).sort()).toEqual(['b1', 'b2', 'b3']);
      };

      lab.setVipOnLo(1, vip, false);
      try {
        await expectB1DownViaVipOnly();
      } finally {
        lab.setVipOnLo(1, vip, true);
      }
      await expectB1BackUp();

      if (forwarding === 'ipip') {
        lab.setDecap(1, false);
        try {
          await expectB1DownViaVipOnly();
        } finally {
          lab.setDecap(1, true);
        }
        await expectB1BackUp();
      }
      await api('DELETE', vipPath('tcp', vip, LAB.tcpPort));
      await api('DELETE', vipPath('tcp', vip, DIRECT_PORT));
    },
  );

  test.each(cases)(
    '%s IPv%i: a backend that forwards the probe to another backend holding the VIP goes down',
    async (forwarding, family, vip) => {
      const address = (n: number) => (family === 4 ? LAB.backend4(n) : LAB.backend6(n));
      const [b1, b2] = [address(1), address(2)];
      await putVipAllUp(vip, LAB.tcpPort, forwarding, CHECK, address);
      const stopForwarding = forwardVip(1, vip, b2);
      try {
        await until(vip, LAB.tcpPort, (v) => backendOf(v, b1).health === 'down', 10_000);
        const reason = backendOf(await api('GET', vipPath('tcp', vip, LAB.tcpPort)), b1).healthReason;
        const timeExceeded =
          `host unreachable, or the probe's hop limit ran out at a backend that forwards packets to ${vip} ` +
          `instead of taking them (is the VIP on its lo?) through ${forwarding} to ${b1}`;
        // A time exceeded that comes back while connect() still holds the socket is kept as a soft error
        // (always for ICMPv6 here, now and then for IPv4): the probe times out instead of naming it.
        expect([timeExceeded, `no answer in ${TIMEOUT_MS} ms through ${forwarding} to ${b1}`]).toContain(reason);
      } finally {
        stopForwarding();
      }
      await until(vip, LAB.tcpPort, allUp, 10_000);
      await api('DELETE', vipPath('tcp', vip, LAB.tcpPort));
    },
  );

  test('a probe a policy rule sends past xlb_probe, answered through a second LB: the check fails naming the route', async () => {
    const vip = LAB.vips4[0];
    const lb2 = await lab.startDaemon([], 2);
    // The second LB balances the VIP to the same backends, unchecked: whichever its ring picks answers a probe it gets.
    await lb2.call('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding: 'dsr', healthCheck: { type: 'none' } });
    for (const n of BACKENDS) await lb2.call('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)));
    const balancedByLb2 = async () => (await lb2.call<StatsView>('GET', '/v1/stats')).outcomes.tx_dsr?.packets ?? 0;
    await expectDownWhileHairpinned(
      vip,
      { to: LAB.lb2v4, by: 'rule' },
      balancedByLb2,
      (backend) =>
        `answered without passing xlb_probe on eth0 (route to ${vip} leaves via eth1, not eth0): ` +
        `the answer need not be from ${backend}`,
    );
    await lb2.stop();
  });
});

/** A way the LB's own routing to a VIP can fail its clients' traffic, and what undoes it; probes take xlb's table past it. */
type BrokenRoute = [what: string, forwarding: Case[0], vip: string, breakRoute: (vip: string) => () => void];
const brokenRoutes: BrokenRoute[] = [
  ['a next hop nobody answers ARP for', 'dsr', LAB.vips4[3], (vip) => lbRoute(`${vip}/32`, ['via', UNANSWERED.v4])],
  ['a next hop nobody answers ND for', 'ipip', LAB.vips6[0], (vip) => lbRoute(`${vip}/128`, ['via', UNANSWERED.v6])],
  ['no route at all', 'dsr', LAB.vips4[3], () => lbRouteGone(LAB.vipPrefix4, ['via', LAB.client4])],
  ['a route out of another interface', 'dsr', LAB.vips4[4], (vip) => hairpin(vip, LAB.lb4, 'route')],
];

describe("via-vip probes take xlb's own route", () => {
  test.each(brokenRoutes)('the LB routes the VIP by %s: %s checks stay up', async (_what, forwarding, vip, breakRoute) => {
    const family = vip.includes(':') ? 6 : 4;
    const address = (n: number) => (family === 4 ? LAB.backend4(n) : LAB.backend6(n));
    await putVipAllUp(vip, LAB.tcpPort, forwarding, CHECK, address);
    await untilRouted(vip);
    const undo = breakRoute(vip);
    try {
      // Long enough for `fall` probes to fail, one after the other, had they followed the LB's route.
      const brokenAt = Date.now();
      const checkedSince = (v: VipView) =>
        v.backends.every((b) => Date.parse(b.lastCheckAt ?? '') > brokenAt + (INTERVAL_MS + TIMEOUT_MS) * (FALL + 1));
      const view = await api('GET', vipPath('tcp', vip, LAB.tcpPort));
      await until(vip, LAB.tcpPort, checkedSince, 10_000);
      expect((await api('GET', vipPath('tcp', vip, LAB.tcpPort))).backends).toEqual(
        view.backends.map((b) => expect.objectContaining({ address: b.address, health: 'up', healthReason: null })),
      );
    } finally {
      undo();
    }
    await api('DELETE', vipPath('tcp', vip, LAB.tcpPort));
  });

  test('xlb serve puts back probe routes the kernel flushed, leaves them at exit; xlb down removes every rule, route and neighbour entry of them', async () => {
    await putVipAllUp(LAB.vips6[1], LAB.tcpPort, 'dsr', CHECK, LAB.backend6);
    const inPlace = { rules: 4, routes: 1, neighbours: 2 };
    // The daemon routes a VIP soon after applying it, while its checks already pass by the LB's own route.
    await untilProbeRouting(inPlace, 5000);
    // The kernel flushes a link's routes and neighbours when it goes down; the daemon puts them back.
    nsRun(lab.ns.lb, 'ip', ['link', 'set', 'eth0', 'down']);
    nsRun(lab.ns.lb, 'ip', ['link', 'set', 'eth0', 'up']);
    expect(probeRouting()).toEqual({ rules: 4, routes: 0, neighbours: 0 });
    await untilProbeRouting(inPlace, PROBE_ROUTE_REPAIR_MS + 5000);
    await daemon.stop();
    expect(probeRouting()).toEqual(inPlace);
    const paths = lab.lbPaths();
    await run('nsenter', [`--net=/run/netns/${lab.ns.lb}`, process.execPath, CLI, 'down', '--iface', 'eth0', '--bpffs', paths.bpffs]);
    expect(probeRouting()).toEqual({ rules: 0, routes: 0, neighbours: 0 });
  });
});

/** Addresses on the lab's switch that no host holds: a next hop nobody answers. */
const UNANSWERED = { v4: '198.18.0.99', v6: '2001:db8::99' };

/** Adds a route to `prefix` on the LB; returns what removes it. */
function lbRoute(prefix: string, via: string[]): () => void {
  nsRun(lab.ns.lb, 'ip', ['route', 'add', prefix, ...via]);
  return () => nsRun(lab.ns.lb, 'ip', ['route', 'del', prefix]);
}

/** Removes the LB's route to `prefix`; returns what puts it back. */
function lbRouteGone(prefix: string, via: string[]): () => void {
  nsRun(lab.ns.lb, 'ip', ['route', 'del', prefix]);
  return () => nsRun(lab.ns.lb, 'ip', ['route', 'add', prefix, ...via]);
}

/** Waits until xlb's table routes `vip` (the daemon adds it soon after applying the VIP). */
async function untilRouted(vip: string): Promise<void> {
  const family = vip.includes(':') ? '-6' : '-4';
  const routed = () => nsRun(lab.ns.lb, 'ip', [family, 'route', 'show', 'table', String(PROBE_TABLE), vip]).trim() !== '';
  const deadline = Date.now() + 5000;
  while (!routed() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(routed()).toBe(true);
}

/** Waits until probeRouting() is `expected`, or fails after `timeoutMs` naming what it is. */
async function untilProbeRouting(expected: ReturnType<typeof probeRouting>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (JSON.stringify(probeRouting()) !== JSON.stringify(expected) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  expect(probeRouting()).toEqual(expected);
}

/** How many of xlb's probe rules, table routes and fake next hops' neighbour entries the LB has. */
function probeRouting(): { rules: number; routes: number; neighbours: number } {
  const json = (args: string[]) => JSON.parse(nsRun(lab.ns.lb, 'ip', ['-j', ...args]) || '[]') as { table?: string; dst?: string }[];
  const table = String(PROBE_TABLE);
  const tableRoutes = (family: string) => {
    try {
      return json([family, 'route', 'show', 'table', table]).length;
    } catch {
      return 0; // a table without a route does not exist
    }
  };
  return {
    rules: ['-4', '-6'].flatMap((family) => json([family, 'rule', 'show']).filter((rule) => rule.table === table)).length,
    routes: tableRoutes('-4') + tableRoutes('-6'),
    neighbours: ([4, 6] as const).filter((family) =>
      json([`-${family}`, 'neigh', 'show', 'dev', 'eth0']).some((entry) => entry.dst === PROBE_NEXT_HOP[family]),
    ).length,
  };
}

/**
 * A dsr VIP checked via vip on every backend, all up; then its probes sent past
 * xlb_probe (hairpin): every backend goes down with `reason`, and `counter` (where the
 * probes went) grows; the hairpin taken away, all come back up. The VIP is deleted.
 */
async function expectDownWhileHairpinned(
  vip: string,
  path: { to: string; by: 'route' | 'rule' },
  counter: () => Promise<number>,
  reason: (backend: string) => string,
): Promise<void> {
  await api('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding: 'dsr', healthCheck: CHECK });
  for (const n of BACKENDS) await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)));
  const allUp = (v: VipView) => v.backends.length === BACKENDS.length && v.backends.every((b) => b.health === 'up');
  await until(vip, LAB.tcpPort, allUp, 10_000);
  const before = await counter();

  const removeHairpin = hairpin(vip, path.to, path.by);
  try {
    // A route lookup answers for its flow for 10 s (probe-route.ts): one made while a probe failed at the start may name no route yet.
    const named = (v: VipView) => v.backends.every((b) => b.health === 'down' && b.healthReason === reason(b.address));
    await until(vip, LAB.tcpPort, named, 15_000).catch(() => undefined);
    const view = await api('GET', vipPath('tcp', vip, LAB.tcpPort));
    for (const n of BACKENDS) expect(backendOf(view, LAB.backend4(n)).healthReason).toBe(reason(LAB.backend4(n)));
    expect(await counter()).toBeGreaterThan(before);
  } finally {
    removeHairpin();
  }
  await until(vip, LAB.tcpPort, allUp, 10_000);
  await api('DELETE', vipPath('tcp', vip, LAB.tcpPort));
}

/**
 * Makes backend n a host that forwards `vip` instead of taking it: the VIP off its lo,
 * forwarding on, a route to `to` (a backend holding the VIP), and no ICMP rate limit, so
 * each probe's time exceeded comes back. Returns what undoes it.
 */
function forwardVip(n: number, vip: string, to: string): () => void {
  const ns = lab.ns.backends[n - 1]!;
  const v6 = vip.includes(':');
  const sysctls = v6 ? ['net.ipv6.conf.all.forwarding', 'net.ipv6.icmp.ratelimit'] : ['net.ipv4.ip_forward', 'net.ipv4.icmp_ratelimit'];
  const saved = sysctls.map((key) => `${key}=${nsRun(ns, 'sysctl', ['-n', key]).trim()}`);
  lab.setVipOnLo(n, vip, false);
  nsRun(ns, 'sysctl', ['-qw', `${sysctls[0]}=1`, `${sysctls[1]}=0`]);
  nsRun(ns, 'ip', ['route', 'add', v6 ? `${vip}/128` : `${vip}/32`, 'via', to]);
  return () => {
    nsRun(ns, 'ip', ['route', 'del', v6 ? `${vip}/128` : `${vip}/32`]);
    nsRun(ns, 'sysctl', ['-qw', ...saved]);
    lab.setVipOnLo(n, vip, true);
  };
}

/** The hairpin router's namespace, made on first use (it goes with the lab). */
let hairpinRouter: string | undefined;

/**
 * A router namespace between a second LB interface (eth1) and the switch, forwarding
 * what the LB sends it over the switch as a router announcing the VIPs would.
 */
function hairpinRouterNs(): string {
  if (hairpinRouter) return hairpinRouter;
  const router = lab.namespaces.create('hairpin');
  const lb = lab.ns.lb;
  nsRun(router, 'ip', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', lb]);
  nsRun(lab.ns.sw, 'ip', ['link', 'add', 'p-hairpin', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router]);
  nsRun(lab.ns.sw, 'ip', ['link', 'set', 'p-hairpin', 'master', 'br0', 'up']);
  for (const [ns, dev, address] of [
    [router, 'eth0', HAIRPIN.router4],
    [router, 'eth1', HAIRPIN.link4],
    [lb, 'eth1', HAIRPIN.lb4],
  ] as const) {
    nsRun(ns, 'ip', ['addr', 'add', address, 'dev', dev]);
    nsRun(ns, 'ip', ['link', 'set', dev, 'up']);
    nsRun(ns, 'ethtool', ['-K', dev, 'tx', 'off']);
  }
  nsRun(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  return (hairpinRouter = router);
}

/**
 * Sends the LB's probes to `vip` out of eth1, past xlb_probe, to the hairpin router,
 * which forwards them over the switch to `to`: back to the LB's eth0 (where XDP sees
 * them), or to the second LB. By a `route` in the main table, or by a policy `rule` on
 * the probes' protocol and port (the main table still routes the VIP out of eth0).
 * Returns what takes the LB's route or rule away again.
 */
function hairpin(vip: string, to: string, by: 'route' | 'rule'): () => void {
  const router = hairpinRouterNs();
  const lb = lab.ns.lb;
  nsRun(router, 'ip', ['route', 'replace', `${vip}/32`, 'via', to, 'dev', 'eth0']);
  const table = by === 'rule' ? ['table', HAIRPIN.table] : [];
  const rule = ['to', `${vip}/32`, 'ipproto', 'tcp', 'dport', String(LAB.tcpPort), 'lookup', HAIRPIN.table];
  nsRun(lb, 'ip', ['route', 'add', `${vip}/32`, 'via', HAIRPIN.link4.split('/')[0]!, 'dev', 'eth1', ...table]);
  if (by === 'rule') nsRun(lb, 'ip', ['rule', 'add', ...rule]);
  return () => {
    if (by === 'rule') nsRun(lb, 'ip', ['rule', 'del', ...rule]);
    nsRun(lb, 'ip', ['route', 'del', `${vip}/32`, ...table]);
  };
}

/** The hairpin router's addresses (on the switch, and on its link to the LB's eth1) and the LB's policy-routing table to it. */
const HAIRPIN = { router4: '198.18.0.253/24', link4: '198.18.5.2/30', lb4: '198.18.5.1/30', table: '7' };
