/**
 * The probe program on xlb's tc egress filter: attached beside the balancer, replaced
 * in one step by the next daemon's (the filter stays one), and removed, with the clsact
 * qdisc once nothing else is on it. Under a running `xlb serve`: the filter (or its
 * qdisc) deleted, or another program at its handle, is put back by itself and
 * reported, one that cannot be put back keeps /readyz at 503, an egress filter that
 * runs before xlb's (a lower preference, or a newer bpf handle at xlb's) or a program at
 * the tcx egress hook (which runs before every filter) is named in a warning, link
 * events and the via-vip failure reason while /readyz stays 200, an operator's later egress filter still sees the packets xlb_probe leaves alone, and a
 * probe entry deleted from the map is rewritten.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { BpfMap, ifNameToIndex, tcAttach, tcDetach, tcPriority, tcQuery, tcxQuery } from '@xlb/native';
import { vipPath } from '../control/cli/client.js';
import { PROBE_REPAIR_MS } from '../control/controller/probe-repair.js';
import type { StatusView, VipView, XlbEvent } from '../control/controller/views.js';
import { LINK_RECHECK_MS } from '../control/daemon/link-watch.js';
import { detachProbeProgram } from '../control/dataplane/attach.js';
import { IPPROTO_TCP, MAPS, probeKeyCodec } from '../control/dataplane/codec.js';
import { Dataplane } from '../control/dataplane/dataplane.js';
import { parseAddress } from '../control/net/address.js';
import { packagePath } from '../control/paths.js';
import { type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { inNamespace, Namespaces, nsRun } from '../scripts/lab/netns.js';
import { until } from './lib/until.js';

const run = promisify(execFile);
const CLI = packagePath('dist/control/cli/main.js');
const LAB_PASS_OBJECT = packagePath('bpf/build/lab_pass.bpf.o');
/** Attaches a program at a tcx hook: bpftool 7.1 cannot. */
const TCX_ATTACH_SOURCE = packagePath('test/lib/tcx-attach.c');
/** A u32 filter's arguments that match no packet the tests send (tc has no gact here: no action). */
const U32_MATCHING_NOTHING = ['protocol', 'ip', 'u32', 'match', 'ip', 'dst', '198.18.255.254/32', 'flowid', '1:1'];
/** Checked every 200 ms: a gap in the probe path shows within a second. */
const FAST_VIP = LAB.vips4[0];
const FAST_CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 150, rise: 1, fall: 2 } as const;
/** Checked every second, down after four failures: a gap shorter than the repair interval plus a check leaves it up. */
const SLOW_VIP = LAB.vips4[1];
const SLOW_CHECK = { type: 'tcp', intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 4 } as const;

const namespaces = new Namespaces('tc');
afterAll(() => namespaces.cleanup());

test('attach, replace, query and detach the probe filter; an XDP program is refused there with the errno', () => {
  const ns = namespaces.create('lb');
  nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
  const first = Dataplane.open({ maxFlows: 64 });
  const second = Dataplane.open({ maxFlows: 64 });
  try {
    inNamespace(ns, () => {
      const ifindex = ifNameToIndex('veth0');
      expect(tcQuery(ifindex)).toBe(0);
      first.attach('veth0', 'generic');
      expect(tcQuery(ifindex)).toBe(first.probeProgram.info.id);
      second.attach('veth0', 'generic');
      expect(tcQuery(ifindex)).toBe(second.probeProgram.info.id);
      expect(nsRun(ns, 'tc', ['filter', 'show', 'dev', 'veth0', 'egress']).match(/ handle /g)).toHaveLength(1);
      expect(detachProbeProgram('veth0')).toBe(true);
      expect(tcQuery(ifindex)).toBe(0);
      expect(detachProbeProgram('veth0')).toBe(false);
      expect(tcDetach(ifindex)).toBe(false);
      expect(() => tcAttach(ifindex, first.program)).toThrow(/bpf_tc_attach\(ifindex \d+ egress\)/);
    });
  } finally {
    first.close();
    second.close();
  }
});

test('tcxQuery: none on a fresh interface at either hook; ENODEV with its errno for a missing interface, a TypeError for a bad hook', () => {
  const ns = namespaces.create('tcx');
  nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  inNamespace(ns, () => {
    const ifindex = ifNameToIndex('veth0');
    expect(tcxQuery(ifindex, 'egress')).toEqual([]);
    expect(tcxQuery(ifindex, 'ingress')).toEqual([]);
    expect(() => tcxQuery(ifindex + 1000, 'egress')).toThrow(
      expect.objectContaining({ code: 'ENODEV', errno: 19, message: expect.stringMatching(/^bpf_prog_query\(ifindex \d+ tcx egress\): /) }),
    );
    expect(() => tcxQuery(ifindex, 'both' as 'egress')).toThrow(TypeError);
  });
});

describe('xlb down', () => {
  const pins = `/sys/fs/bpf/${namespaces.prefix}-down`;
  afterAll(() => rmSync(pins, { recursive: true, force: true }));
  const down = (ns: string) =>
    run('nsenter', [`--net=/run/netns/${ns}`, process.execPath, CLI, 'down', '--iface', 'veth0', '--xdp-mode', 'generic', '--bpffs', pins]);
  const clsact = (ns: string) =>
    JSON.parse(nsRun(ns, 'tc', ['-j', 'qdisc', 'show', 'dev', 'veth0'])).some((q: { kind: string }) => q.kind === 'clsact');

  test('removes the clsact qdisc its filter was on once nothing else is; keeps it, saying why, for an operator filter', async () => {
    const ns = namespaces.create('down');
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
    for (const operatorFilter of [false, true]) {
      const dp = Dataplane.open({ pinDir: pins, maxFlows: 64 });
      try {
        inNamespace(ns, () => dp.attach('veth0', 'generic'));
        expect(clsact(ns)).toBe(true);
        if (operatorFilter) nsRun(ns, 'tc', ['filter', 'add', 'dev', 'veth0', 'ingress', 'pref', '7', ...U32_MATCHING_NOTHING]);
      } finally {
        dp.close();
      }
      const { stdout } = await down(ns);
      expect(inNamespace(ns, () => tcQuery(ifNameToIndex('veth0')))).toBe(0);
      if (operatorFilter) {
        expect(stdout).toMatch(/; the clsact qdisc on veth0 stays for its other filters \(ingress pref 7 u32\)\n$/);
        expect(clsact(ns)).toBe(true);
        expect(nsRun(ns, 'tc', ['filter', 'show', 'dev', 'veth0', 'ingress'])).toMatch(/pref 7 u32/);
      } else {
        expect(stdout).toMatch(/; removed the clsact qdisc on veth0\n$/);
        expect(clsact(ns)).toBe(false);
      }
    }
  });
});

describe('the probe filter under a running daemon', () => {
  let lab: Lab;
  let daemon: DaemonProcess;
  let socket: WebSocket;
  const events: XlbEvent[] = [];
  const lbTc = (...args: string[]) => nsRun(lab.ns.lb, 'tc', args);
  const probeFilter = () => inNamespace(lab.ns.lb, () => tcQuery(ifNameToIndex('eth0')));
  const status = async () => (await daemon.api.request<StatusView>('GET', '/v1/status')).body;
  const warningsMetric = async () =>
    Number(/^xlb_warnings (\d+)$/m.exec(String((await daemon.api.request<string>('GET', '/metrics')).body))?.[1] ?? NaN);
  const readyz = async () => (await daemon.api.request('GET', '/readyz')).status;
  const backend = async (vip: string) => (await daemon.call<VipView>('GET', vipPath('tcp', vip, LAB.tcpPort))).backends[0]!;
  /** A via-vip check of `vip`'s backend that passed after `since` (ms since the epoch). */
  const checkPassesAfter = (vip: string, since: number) =>
    until(
      () => backend(vip),
      (b) => b.health === 'up' && Date.parse(b.lastCheckAt ?? '') > since,
      `a via-vip check of ${vip} passing`,
    );

  let helpers: string;
  const tcxAttach = () => join(helpers, 'tcx-attach');
  const tcxLink = `/sys/fs/bpf/${namespaces.prefix}-tcx-link`;

  beforeAll(async () => {
    helpers = mkdtempSync(join(tmpdir(), 'xlb-tcx-'));
    await run('cc', ['-Wall', '-o', tcxAttach(), TCX_ATTACH_SOURCE, '-lbpf']);
    lab = await Lab.create('tcw');
    // An operator's filter before xlb's (matching nothing): the daemon warns at start.
    nsRun(lab.ns.lb, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'clsact']);
    nsRun(lab.ns.lb, 'tc', ['filter', 'add', 'dev', 'eth0', 'egress', 'pref', '100', ...U32_MATCHING_NOTHING]);
    daemon = await lab.startDaemon();
    socket = new WebSocket(`ws+unix:${lab.lbPaths().socket}:/v1/events`);
    socket.on('message', (data) => events.push(JSON.parse(String(data)) as XlbEvent));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    await daemon.call('PUT', vipPath('tcp', FAST_VIP, LAB.tcpPort), { forwarding: 'dsr', healthCheck: FAST_CHECK });
    await daemon.call('PUT', vipPath('tcp', FAST_VIP, LAB.tcpPort, LAB.backend4(1)));
    await checkPassesAfter(FAST_VIP, 0);
  }, 60_000);
  afterAll(() => {
    socket?.close();
    rmSync(tcxLink, { force: true });
    lab?.destroy();
    if (helpers) rmSync(helpers, { recursive: true, force: true });
  });

  const links = (from: number) => events.slice(from).filter((e) => e.type === 'link');
  const aheadText = (filter: string) => `an egress filter (${filter}) runs before xlb_probe on eth0: probes may not reach it`;

  test("a filter before xlb's from the start is named in a warning and the link reason while ready; deleted, both go with a link event", async () => {
    const ahead = aheadText('pref 100, u32, protocol ip');
    const seen = await until(status, (s) => s.warnings.some((w) => w.startsWith(ahead)), 'the warning');
    expect(seen).toMatchObject({ attached: true, ready: true, attachReason: expect.stringMatching(/runs after xlb's$/) });
    expect(seen.attachReason).toContain(ahead);
    const from = events.length;
    lbTc('filter', 'del', 'dev', 'eth0', 'egress', 'pref', '100');
    await until(
      () => links(from),
      (e) => e.length >= 1,
      'the link event of the filter gone',
    );
    expect(links(from)).toEqual([expect.objectContaining({ attached: true, reason: null })]);
    expect(await status()).toMatchObject({ attached: true, attachReason: null, ready: true });
    expect((await status()).warnings.filter((w) => w.includes('before xlb_probe'))).toEqual([]);
  });

  /** Adds something ahead of xlb_probe that keeps probes from it; returns the text naming it and a function removing it. */
  type AddAhead = () => { ahead: string; remove: () => void };
  const tcFilter =
    (add: string[], del: string[], named: string): AddAhead =>
    () => {
      lbTc('filter', 'add', 'dev', 'eth0', 'egress', ...add);
      return { ahead: aheadText(named), remove: () => lbTc('filter', 'del', 'dev', 'eth0', 'egress', ...del) };
    };

  test.each<[string, AddAhead]>([
    [
      'a u32 filter at a lower preference, passing probes unchanged',
      tcFilter(
        ['pref', '1', 'protocol', 'ip', 'u32', 'match', 'ip', 'dst', `${FAST_VIP}/32`, 'flowid', '1:1'],
        ['pref', '1'],
        'pref 1, u32, protocol ip',
      ),
    ],
    [
      "a bpf filter added at xlb's preference after xlb's, dropping every packet",
      tcFilter(
        ['pref', String(tcPriority), 'handle', '1', 'bpf', 'da', 'obj', LAB_PASS_OBJECT, 'sec', 'xdp'],
        ['pref', String(tcPriority), 'handle', '1', 'bpf'],
        `pref ${tcPriority}, bpf, handle 0x1, program lab_pass`,
      ),
    ],
    [
      'a program at the tcx egress hook (a BPF link), dropping every packet',
      () => {
        const stdout = execFileSync('nsenter', [`--net=/run/netns/${lab.ns.lb}`, tcxAttach(), LAB_PASS_OBJECT, 'eth0', tcxLink], {
          encoding: 'utf8',
        });
        const id = Number(stdout);
        expect(id).toBeGreaterThan(0);
        return {
          ahead: `a tcx egress program (id ${id}, name lab_pass) runs before xlb_probe on eth0: probes may not reach it`,
          remove: () => rmSync(tcxLink),
        };
      },
    ],
  ])('%s: a warning, link events and the via-vip failure name it, /readyz stays 200; deleted, all go', async (_, addAhead) => {
    const from = events.length;
    const { ahead, remove } = addAhead();
    try {
      await until(
        () => links(from),
        (e) => e.length >= 1,
        'the link event naming the filter',
      );
      expect(links(from)).toEqual([expect.objectContaining({ attached: true, reason: expect.stringContaining(ahead) })]);
      const seen = await status();
      expect(seen).toMatchObject({ attached: true, ready: true });
      expect(seen.warnings).toContainEqual(expect.stringContaining(ahead));
      expect(await warningsMetric()).toBe(seen.warnings.length);
      expect(await readyz()).toBe(200);
      const failed = await until(
        () => backend(FAST_VIP),
        (b) => b.health === 'down' && (b.healthReason ?? '').startsWith(ahead),
        'the via-vip check failing with the filter named',
      );
      expect(failed.healthReason).toMatch(new RegExp(`\\(.+ through dsr to ${LAB.backend4(1).replaceAll('.', '\\.')}\\)$`));
    } finally {
      remove();
    }
    const deletedAt = Date.now();
    await until(
      () => links(from),
      (e) => e.length >= 2,
      'the link event of the filter gone',
    );
    expect(links(from)[1]).toMatchObject({ attached: true, reason: null });
    expect((await status()).warnings.filter((w) => w.includes('before xlb_probe'))).toEqual([]);
    expect(await warningsMetric()).toBe((await status()).warnings.length);
    await checkPassesAfter(FAST_VIP, deletedAt);
  });

  /** Changes xlb's filter; expects it put back by itself, a link event giving `reason`, then one attached again. */
  async function expectPutBack(change: () => void, reason: string): Promise<void> {
    const id = probeFilter();
    expect(id).toBeGreaterThan(0);
    const from = events.length;
    change();
    const links = await until(
      () => events.slice(from).filter((e) => e.type === 'link'),
      (e) => e.length >= 2,
      'the link events of the repair',
    );
    expect(links).toEqual([
      expect.objectContaining({ attached: false, reason: `${reason}: via-vip health checks cannot pass; attached again` }),
      expect.objectContaining({ attached: true, reason: null }),
    ]);
    expect(probeFilter()).toBe(id);
  }

  test.each([
    ['filter', ['filter', 'del', 'dev', 'eth0', 'egress', 'pref', String(tcPriority)]],
    ['clsact qdisc', ['qdisc', 'del', 'dev', 'eth0', 'clsact']],
  ])('its %s deleted: put back by itself, reported in link events, and a via-vip check passes again', async (_, command) => {
    const deletedAt = Date.now();
    await expectPutBack(() => lbTc(...command), "xlb's tc egress filter on eth0 is gone");
    expect(await readyz()).toBe(200);
    await checkPassesAfter(FAST_VIP, deletedAt + LINK_RECHECK_MS);
  });

  test("another program at xlb's filter: replaced by xlb_probe again, the event naming the one found", async () => {
    const other = Dataplane.open({ maxFlows: 64 });
    try {
      await expectPutBack(
        () => inNamespace(lab.ns.lb, () => tcAttach(ifNameToIndex('eth0'), other.probeProgram)),
        `xlb's tc egress filter on eth0 runs program id ${other.probeProgram.info.id}, not this daemon's xlb_probe`,
      );
    } finally {
      other.close();
    }
  });

  test('a filter that cannot be put back: /readyz 503 with the reason until it can', async () => {
    // Another kind of filter at xlb's preference: bpf_tc_attach cannot add xlb's there (EINVAL).
    await until(
      () => {
        lbTc('filter', 'del', 'dev', 'eth0', 'egress', 'pref', String(tcPriority));
        try {
          lbTc('filter', 'add', 'dev', 'eth0', 'egress', 'pref', String(tcPriority), ...U32_MATCHING_NOTHING);
          return true;
        } catch {
          return false; // the daemon put its filter back in between
        }
      },
      (added) => added,
      "another filter at xlb's preference",
    );
    await until(readyz, (code) => code === 503, '/readyz 503');
    expect(await status()).toMatchObject({
      attached: false,
      ready: false,
      attachReason: expect.stringMatching(
        /^xlb's tc egress filter on eth0 is gone: via-vip health checks cannot pass; attaching it again failed: bpf_tc_attach\(ifindex \d+ egress\): /,
      ),
    });
    lbTc('filter', 'del', 'dev', 'eth0', 'egress', 'pref', String(tcPriority));
    const freedAt = Date.now();
    await until(readyz, (code) => code === 200, '/readyz 200 once the filter is back');
    expect(probeFilter()).toBeGreaterThan(0);
    await checkPassesAfter(FAST_VIP, freedAt);
  });

  test("an operator's egress filter after xlb's still sees the packets xlb_probe leaves alone", async () => {
    nsRun(lab.ns.lb, 'ip', ['link', 'add', 'mirror0', 'type', 'veth', 'peer', 'name', 'mirror1']);
    // No IPv6 on mirror0: its own router solicitations would count as sent packets.
    nsRun(lab.ns.lb, 'sysctl', ['-qw', 'net.ipv6.conf.mirror0.disable_ipv6=1']);
    nsRun(lab.ns.lb, 'ip', ['link', 'set', 'mirror0', 'up']);
    nsRun(lab.ns.lb, 'ip', ['link', 'set', 'mirror1', 'up']);
    const mirrored = () => Number(JSON.parse(nsRun(lab.ns.lb, 'ip', ['-s', '-j', 'link', 'show', 'mirror0']))[0].stats64.tx.packets);
    // UDP to port 9 of the client, copied to mirror0 by a filter at a later preference than xlb's.
    lbTc(
      ...['filter', 'add', 'dev', 'eth0', 'egress', 'pref', String(tcPriority + 1000), 'protocol', 'ip', 'u32'],
      ...['match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', '9', '0xffff'],
      ...['action', 'mirred', 'egress', 'mirror', 'dev', 'mirror0'],
    );
    const before = mirrored();
    nsRun(lab.ns.lb, 'bash', ['-c', `for i in 1 2 3 4 5; do echo probe-filter-test > /dev/udp/${LAB.client4}/9; done`]);
    await until(mirrored, (n) => n >= before + 5, 'five datagrams mirrored by the later filter');
    const at = Date.now();
    await checkPassesAfter(FAST_VIP, at);
  });

  test('a probe entry deleted under the daemon is rewritten within a couple of seconds, counted, and the check stays up', async () => {
    await daemon.call('PUT', vipPath('tcp', SLOW_VIP, LAB.tcpPort), { forwarding: 'dsr', healthCheck: SLOW_CHECK });
    await daemon.call('PUT', vipPath('tcp', SLOW_VIP, LAB.tcpPort, LAB.backend4(2)));
    await checkPassesAfter(SLOW_VIP, 0);
    const probes = BpfMap.fromPin(join(lab.lbPaths().bpffs, MAPS.probes));
    try {
      const vipBytes = parseAddress(SLOW_VIP).bytes;
      const key = (() => {
        for (let k = probes.nextKey(null); k; k = probes.nextKey(k)) {
          const decoded = probeKeyCodec.decode(k);
          if (decoded.addr.equals(vipBytes) && decoded.proto === IPPROTO_TCP) return k;
        }
        throw new Error(`no TCP probe entry for ${SLOW_VIP}`);
      })();
      const value = probes.lookup(key)!;
      const from = events.length;
      expect(probes.delete(key)).toBe(true);
      const deletedAt = Date.now();
      await until(
        () => probes.lookup(key),
        (found) => found?.equals(value) ?? false,
        'the probe entry rewritten',
        PROBE_REPAIR_MS + 2000,
      );
      const { errors } = await status();
      expect(errors).toContainEqual(
        expect.objectContaining({
          component: 'dataplane',
          lastMessage: expect.stringMatching(
            new RegExp(`rewritten: missing tcp ${SLOW_VIP.replaceAll('.', '\\.')}:80 from port \\d+ -> backend \\d+ by dsr$`),
          ),
        }),
      );
      await checkPassesAfter(SLOW_VIP, deletedAt + PROBE_REPAIR_MS);
      expect(events.slice(from).filter((e) => e.type === 'health')).toEqual([]);
    } finally {
      probes.close();
    }
  });
});
