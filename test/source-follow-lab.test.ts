/**
 * The LB's own sources in the netns lab with `xlb serve`: re-addressing the LB's
 * interface while via-vip checks run keeps every backend up, moves the data plane's
 * sources (the pinned config) to the new addresses, and drop_probe_loop then knows a
 * looped probe by the new source; a --source-v4 the host does not have is warned of
 * and holds its checks (never failing them) until the operator adds it; an interface
 * without an address of a family unsets that source and holds its checks until one comes.
 */
import { join } from 'node:path';
import { BpfMap } from '@xlb/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { StatsView, StatusView, VipView } from '../control/controller/views.js';
import { configCodec, MAPS, PROBE_PORT_MIN } from '../control/dataplane/codec.js';
import { u32Bytes } from '../control/dataplane/struct.js';
import { formatAddress } from '../control/net/address.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';
import { tcp4, tcp6 } from './lib/frames.js';
import { until } from './lib/until.js';

const CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 150, rise: 1, fall: 2 } as const;
/** The LB's addresses after re-addressing, on the same subnets. */
const NEW4 = '198.18.0.7';
const NEW6 = '2001:db8::7';
/** A --source-v4 that no interface of the LB has until the test adds it. */
const ABSENT4 = '198.18.0.99';
/** The VIPs under check: ipip over IPv4 (the outer source is the LB's), dsr over IPv6. */
const VIPS = [
  { vip: LAB.vips4[2], forwarding: 'ipip', backend: LAB.backend4 },
  { vip: LAB.vips6[0], forwarding: 'dsr', backend: LAB.backend6 },
] as const;

let lab: Lab;
let daemon: DaemonProcess;

beforeAll(async () => {
  lab = await Lab.create('srcf');
  // Removing the primary address keeps the secondary (the new one) on the interface.
  nsRun(lab.ns.lb, 'sysctl', ['-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
  daemon = await lab.startDaemon();
});
afterAll(() => lab?.destroy());

const api = <T>(method: string, path: string, body?: unknown) => daemon.call<T>(method, path, body);

/** The sources the pinned config holds (null: unset). */
function configSources(): { v4: string | null; v6: string | null } {
  const map = BpfMap.fromPin(join(lab.lbPaths(1).bpffs, MAPS.config));
  try {
    const config = configCodec.decode(map.lookup(u32Bytes(0))!);
    const text = (family: 4 | 6, bytes: Buffer) => (bytes.some((b) => b !== 0) ? formatAddress(family, bytes) : null);
    return { v4: text(4, config.source_v4), v6: text(6, config.source_v6) };
  } finally {
    map.close();
  }
}

/** Every backend of the checked VIPs, as the API shows them. */
const backends = async () =>
  (await Promise.all(VIPS.map(({ vip }) => api<VipView>('GET', vipPath('tcp', vip, LAB.tcpPort))))).flatMap((v) => v.backends);

/** Runs `during` while sampling every backend's health: the healths seen. */
async function healthsDuring(during: () => Promise<void>): Promise<string[]> {
  const seen = new Set<string>();
  let running = true;
  const sampling = (async () => {
    while (running) {
      for (const b of await backends()) seen.add(b.health);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await during();
  } finally {
    running = false;
    await sampling;
  }
  return [...seen];
}

/** Every backend passed a check that began after `since` (ms since the epoch). */
const checkedSince = (since: number) => (list: VipView['backends']) =>
  list.length === VIPS.length * BACKENDS.length &&
  list.every((b) => b.health === 'up' && b.healthReason === null && Date.parse(b.lastCheckAt ?? '') > since + CHECK.timeoutMs);

const mac = (ns: string) =>
  Buffer.from(
    (JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'eth0'])) as { address: string }[])[0]!.address
      .split(':')
      .map((h) => parseInt(h, 16)),
  );

/** Sends `frame` from the client's eth0 to the LB's, as it is (a packet socket: any source). */
function sendToLb(frame: Buffer): void {
  mac(lab.ns.lb).copy(frame, 0);
  mac(lab.ns.client).copy(frame, 6);
  const script =
    'import socket, sys\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(("eth0", 0))\ns.send(bytes.fromhex(sys.argv[1]))\n';
  nsRun(lab.ns.client, 'python3', ['-c', script, frame.toString('hex')]);
}

const looped = async () => (await api<StatsView>('GET', '/v1/stats')).outcomes.drop_probe_loop?.packets ?? 0;

describe('the LB re-addressed', () => {
  test('backends stay up, the data plane’s sources follow, a looped probe from the new source is dropped', async () => {
    for (const { vip, forwarding, backend } of VIPS) {
      await api('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding, healthCheck: CHECK });
      for (const n of BACKENDS) await api('PUT', vipPath('tcp', vip, LAB.tcpPort, backend(n)));
    }
    await until(backends, checkedSince(0), 'all up');
    expect(configSources()).toEqual({ v4: LAB.lb4, v6: LAB.lb6 });

    const seen = await healthsDuring(async () => {
      const movedAt = Date.now();
      nsRun(lab.ns.lb, 'ip', ['addr', 'add', `${NEW4}/${LAB.subnet4}`, 'dev', 'eth0']);
      nsRun(lab.ns.lb, 'ip', ['addr', 'del', `${LAB.lb4}/${LAB.subnet4}`, 'dev', 'eth0']);
      nsRun(lab.ns.lb, 'ip', ['addr', 'add', `${NEW6}/${LAB.subnet6}`, 'dev', 'eth0', 'nodad']);
      nsRun(lab.ns.lb, 'ip', ['addr', 'del', `${LAB.lb6}/${LAB.subnet6}`, 'dev', 'eth0']);
      await until(configSources, (s) => s.v4 === NEW4 && s.v6 === NEW6, 'the config follows', 5_000);
      // Checks from the new sources pass, three intervals on.
      await until(backends, checkedSince(movedAt + 3 * CHECK.intervalMs), 'checks pass from the new sources');
    });
    expect(seen).toEqual(['up']);

    for (const frame of [
      tcp4({ src: NEW4, dst: VIPS[0].vip, sport: PROBE_PORT_MIN, flags: 'S' }),
      tcp6({ src: NEW6, dst: VIPS[1].vip, sport: PROBE_PORT_MIN + 1, flags: 'S' }),
    ]) {
      const before = await looped();
      sendToLb(frame);
      await until(looped, (n) => n === before + 1, 'the looped probe is dropped', 5_000);
    }
  });

  test('a --source-v4 the host lacks: warned of, its checks held (never down) until the address is added', async () => {
    await daemon.stop();
    daemon = await lab.startDaemon(['--source-v4', ABSENT4]);
    const warning = `--source-v4 ${ABSENT4} is not an address of this host: its via-vip health checks are held until it is`;
    expect((await api<StatusView>('GET', '/v1/status')).warnings).toContain(warning);
    const held = `waiting for the LB's IPv4 source: --source-v4 ${ABSENT4} is not an address of this host`;
    const v4 = (list: VipView['backends']) => list.filter((b) => b.address.includes('.'));
    const seen = await healthsDuring(async () => {
      await until(backends, (list) => v4(list).every((b) => b.healthReason === held), 'IPv4 checks held');
      expect(configSources()).toEqual({ v4: ABSENT4, v6: NEW6 });
      const addedAt = Date.now();
      nsRun(lab.ns.lb, 'ip', ['addr', 'add', `${ABSENT4}/${LAB.subnet4}`, 'dev', 'eth0']);
      await until(backends, checkedSince(addedAt), 'checks pass from the given source');
    });
    expect(seen).toEqual(['up']);
    expect((await api<StatusView>('GET', '/v1/status')).warnings).not.toContain(warning);
  });

  test('no IPv6 address left: the IPv6 source is unset and its checks held (never down); an address back, they pass', async () => {
    const held = "waiting for the LB's IPv6 source: eth0 has no global IPv6 address and --source-v6 is not given";
    const v6 = (list: VipView['backends']) => list.filter((b) => b.address.includes(':'));
    const seen = await healthsDuring(async () => {
      nsRun(lab.ns.lb, 'ip', ['addr', 'del', `${NEW6}/${LAB.subnet6}`, 'dev', 'eth0']);
      await until(backends, (list) => v6(list).every((b) => b.healthReason === held), 'IPv6 checks held');
      expect(configSources()).toEqual({ v4: ABSENT4, v6: null });
      const addedAt = Date.now();
      nsRun(lab.ns.lb, 'ip', ['addr', 'add', `${LAB.lb6}/${LAB.subnet6}`, 'dev', 'eth0', 'nodad']);
      await until(backends, checkedSince(addedAt), 'checks pass from the new IPv6 source');
    });
    expect(seen).toEqual(['up']);
    expect(configSources()).toEqual({ v4: ABSENT4, v6: LAB.lb6 });
  });
});
