/**
 * Readiness follows the interface: a real `xlb serve` on a veth in a namespace, the
 * veth deleted and made again, another program attached over ours, and the daemon
 * living through a BGP failure, counted. Also the preflight rows about a veth's peer.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { BpfMap, BpfObject, ifNameToIndex, tcQuery, xdpQuery } from '@xlb/native';
import { ApiClient } from '../control/cli/client.js';
import type { XlbEvent } from '../control/controller/views.js';
import { attachProgram, detachProgram } from '../control/dataplane/attach.js';
import type { Check } from '../control/deploy/preflight.js';
import { packagePath } from '../control/paths.js';
import { startEtcd } from '../scripts/lab/etcd.js';
import { DaemonProcess } from '../scripts/lab/lab.js';
import { inNamespace, Namespaces, nsRun } from '../scripts/lab/netns.js';
import { storedVip } from './lib/stored.js';
import { until } from './lib/until.js';

const run = promisify(execFile);
const CLI = packagePath('dist/control/cli/main.js');
const LAB_PASS_OBJECT = packagePath('bpf/build/lab_pass.bpf.o');

interface Status {
  attached: boolean;
  attachReason: string | null;
  ready: boolean;
  warnings: string[];
  errors: { component: string; count: number; lastMessage: string }[];
}

const namespaces = new Namespaces('lw');
const lb = namespaces.name('lb');
const peer = namespaces.name('peer');
let work: string;
let bpffs: string;
let passObject: BpfObject;

/** eth0 in the LB namespace, its peer p0 in the peer namespace. */
function makeVeth(): void {
  nsRun(peer, 'ip', ['link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lb]);
  nsRun(peer, 'ip', ['link', 'set', 'p0', 'up']);
  nsRun(lb, 'ip', ['addr', 'add', '198.18.0.2/24', 'dev', 'eth0']);
  nsRun(lb, 'ip', ['link', 'set', 'eth0', 'up']);
}

/** Removes eth0 (and with it p0) if it is there. */
function removeVeth(): void {
  if (inNamespace(lb, () => hasInterface('eth0'))) nsRun(lb, 'ip', ['link', 'del', 'eth0']);
}

function hasInterface(name: string): boolean {
  try {
    return ifNameToIndex(name) > 0;
  } catch {
    // if_nametoindex fails for a name no interface has.
    return false;
  }
}

function startDaemon(args: string[] = []): DaemonProcess {
  const socket = join(work, 'api.sock');
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${lb}`,
      process.execPath,
      CLI,
      'serve',
      '--iface',
      'eth0',
      '--api',
      `unix:${socket}`,
      '--state',
      join(work, 'state.json'),
      '--bpffs',
      bpffs,
      '--bird-dir',
      join(work, 'bird'),
      '--log-level',
      'silent',
      ...args,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return new DaemonProcess(child, new ApiClient(`unix:${socket}`));
}

const status = async (d: DaemonProcess) => (await d.api.request<Status>('GET', '/v1/status')).body;
const readyz = async (d: DaemonProcess) => (await d.api.request('GET', '/readyz')).status;
const metric = async (d: DaemonProcess, line: RegExp) => {
  const text = (await d.api.request<string>('GET', '/metrics')).body;
  return Number(line.exec(String(text))?.[1] ?? NaN);
};
const programOnEth0 = () => inNamespace(lb, () => xdpQuery(ifNameToIndex('eth0'), 'native'));
const probeFilterOnEth0 = () => inNamespace(lb, () => tcQuery(ifNameToIndex('eth0')));
const mapIds = () =>
  readdirSync(bpffs).map((name) => {
    const map = BpfMap.fromPin(join(bpffs, name));
    try {
      return `${name}=${map.info.id}`;
    } finally {
      map.close();
    }
  });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), `${namespaces.prefix}-`));
  bpffs = `/sys/fs/bpf/${namespaces.prefix}`;
  namespaces.create(lb);
  namespaces.create(peer);
  passObject = new BpfObject(LAB_PASS_OBJECT);
});
afterAll(() => {
  passObject?.close();
  namespaces.cleanup();
  rmSync(bpffs, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('the link watch', () => {
  let daemon: DaemonProcess;
  const events: XlbEvent[] = [];
  let socket: WebSocket;

  beforeAll(async () => {
    makeVeth();
    daemon = startDaemon();
    await daemon.ready();
    socket = new WebSocket(`ws+unix:${join(work, 'api.sock')}:/v1/events`);
    socket.on('message', (data) => {
      const event = JSON.parse(String(data)) as XlbEvent;
      if (event.type === 'link') events.push(event);
    });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  }, 30_000);
  afterAll(async () => {
    socket?.close();
    await daemon?.stop();
    removeVeth();
  });

  test('interface gone: not ready, not attached, why, an event and xlb_attached 0; back: our program again with the same maps', async () => {
    const first = await status(daemon);
    expect(first).toMatchObject({ attached: true, attachReason: null, ready: true, errors: [] });
    expect(first.warnings).toContainEqual(
      expect.stringMatching(new RegExp(`^eth0 is a veth whose peer \\(ifindex \\d+ in namespace ${peer}\\) has no XDP program`)),
    );
    expect(await metric(daemon, /^xlb_attached (\d+)$/m)).toBe(1);
    const ours = programOnEth0();
    expect(ours).toBeGreaterThan(0);
    const probeProgram = probeFilterOnEth0();
    expect(probeProgram).toBeGreaterThan(0);
    const maps = mapIds();

    nsRun(lb, 'ip', ['link', 'del', 'eth0']);
    await until(
      () => readyz(daemon),
      (code) => code === 503,
      '/readyz 503 after the interface is deleted',
    );
    expect(await status(daemon)).toMatchObject({ attached: false, attachReason: 'interface eth0 is gone', ready: false });
    expect(await metric(daemon, /^xlb_attached (\d+)$/m)).toBe(0);
    await until(
      () => events,
      (e) => e.some((x) => x.type === 'link' && !x.attached),
      'a link event',
    );
    expect(events.at(-1)).toMatchObject({ type: 'link', attached: false, reason: 'interface eth0 is gone' });

    makeVeth();
    await until(
      () => readyz(daemon),
      (code) => code === 200,
      '/readyz 200 after the interface is back',
    );
    expect(programOnEth0()).toBe(ours);
    expect(probeFilterOnEth0()).toBe(probeProgram);
    expect(mapIds()).toEqual(maps);
    expect(await status(daemon)).toMatchObject({ attached: true, attachReason: null, ready: true });
    expect(await metric(daemon, /^xlb_attached (\d+)$/m)).toBe(1);
    await until(
      () => events,
      (e) => e.at(-1)?.type === 'link' && (e.at(-1) as { attached: boolean }).attached,
      'the attached event',
    );
  });

  test('another program over ours: not ready, the reason names it, and it is left in place', async () => {
    const pass = passObject.program('lab_pass');
    try {
      inNamespace(lb, () => attachProgram('eth0', pass, 'native'));
      const passId = pass.info.id;
      await until(
        () => readyz(daemon),
        (code) => code === 503,
        '/readyz 503 with another program attached',
      );
      const seen = await status(daemon);
      expect(seen).toMatchObject({ attached: false, ready: false });
      expect(seen.attachReason).toMatch(new RegExp(`eth0 runs XDP program lab_pass \\(id ${passId}\\)`));
      expect(events.at(-1)).toMatchObject({ type: 'link', attached: false, reason: seen.attachReason });
      // Not fought over: the program stays through more than two re-checks (one a second) and a link event.
      nsRun(lb, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
      const deadline = Date.now() + 2500;
      while (Date.now() < deadline) {
        expect(programOnEth0()).toBe(passId);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await readyz(daemon)).toBe(503);

      // Detached by someone else from the same interface: reported, not put back.
      inNamespace(lb, () => detachProgram('eth0', 'native'));
      await until(
        () => status(daemon),
        (s) => /detached by someone else/.test(s.attachReason ?? ''),
        'the detached reason',
      );
      expect(programOnEth0()).toBe(0);
    } finally {
      pass.close();
    }
  });
});

describe('internal errors', () => {
  test('a BGP announcement that fails is counted and shown in status; the daemon stays up and ready', async () => {
    rmSync(bpffs, { recursive: true, force: true });
    rmSync(join(work, 'state.json'), { force: true });
    makeVeth();
    const daemon = startDaemon(['--bgp', '--bgp-peer', '198.18.0.254@65000']);
    const birdPidFile = join(work, 'bird', 'bird.pid');
    try {
      await daemon.ready();
      const birdPid = Number(readFileSync(birdPidFile, 'utf8'));
      expect(await metric(daemon, /^xlb_internal_errors_total\{component="bgp"\} (\d+)$/m)).toBeNaN();
      // BIRD gone: the next announcement (a VIP with a backend in its ring) fails.
      process.kill(birdPid, 'SIGKILL');
      const vip = '/v1/vips/tcp/198.19.0.1/80';
      expect((await daemon.api.request('PUT', vip, { forwarding: 'ipip', healthCheck: { type: 'none' } })).status).toBe(201);
      expect((await daemon.api.request('PUT', `${vip}/backends/198.18.0.11`, {})).status).toBe(201);
      await until(
        () => metric(daemon, /^xlb_internal_errors_total\{component="bgp"\} (\d+)$/m),
        (n) => n >= 1,
        'a counted BGP failure',
      );
      const seen = await status(daemon);
      expect(seen.errors).toEqual([
        expect.objectContaining({ component: 'bgp', count: expect.any(Number), lastMessage: expect.stringMatching(/birdc/) }),
      ]);
      expect(daemon.child.exitCode).toBeNull();
      expect(await readyz(daemon)).toBe(200);
    } finally {
      await daemon.stop();
      try {
        process.kill(Number(readFileSync(birdPidFile, 'utf8')), 'SIGKILL'); // the BIRD this test's daemon started, if still there
      } catch {
        // gone
      }
      removeVeth();
    }
  }, 30_000);

  test('an etcd document the daemon cannot read is counted and shown; the watch goes on and the daemon stays ready', async () => {
    rmSync(bpffs, { recursive: true, force: true });
    makeVeth();
    const client = 'http://127.0.0.1:2379';
    const etcdctl = (...args: string[]) => run('ip', ['netns', 'exec', lb, 'etcdctl', '--endpoints', client, ...args]);
    let etcd: ChildProcess | undefined;
    let daemon: DaemonProcess | undefined;
    try {
      etcd = await startEtcd(lb, 'lw', join(work, 'etcd'), client);
      daemon = startDaemon(['--store', 'etcd://127.0.0.1:2379/lw']);
      await daemon.ready();
      const storeErrors = () => metric(daemon!, /^xlb_internal_errors_total\{component="store"\} (\d+)$/m);
      expect(await storeErrors()).toBeNaN();
      await etcdctl('put', '/lw/state', '{"version": "not a state"');
      await until(storeErrors, (n) => n === 1, 'a counted store error');
      const seen = await status(daemon);
      expect(seen.errors).toEqual([expect.objectContaining({ component: 'store', count: 1, lastMessage: expect.stringMatching(/JSON/) })]);
      expect(await readyz(daemon)).toBe(200);
      // The watch goes on: a good document after the bad one is adopted.
      await etcdctl('put', '/lw/state', JSON.stringify({ version: 1, vips: [] }));
      const vip = storedVip(1, '198.19.0.1', []);
      await etcdctl('put', '/lw/state', JSON.stringify({ version: 1, vips: [vip] }));
      await until(
        async () => (await daemon!.api.request<{ vips: unknown[] }>('GET', '/v1/vips')).body.vips.length,
        (n) => n === 1,
        'the VIP from etcd',
      );
    } finally {
      await daemon?.stop();
      etcd?.kill('SIGKILL');
      removeVeth();
    }
  }, 60_000);
});

describe('preflight on a veth', () => {
  test('a peer without XDP is named in a warning row; with XDP on the peer, no warning; the VLAN offload row is there', async () => {
    makeVeth();
    const config = join(work, 'preflight.yaml');
    writeFileSync(config, `iface: eth0\nstate: ${join(work, 'state.json')}\n`);
    // In the LB namespace, as an operator would run it there (other rows may fail on this host: only ours matter).
    const rows = async () => {
      const { stdout } = await run('nsenter', [
        `--net=/run/netns/${lb}`,
        process.execPath,
        CLI,
        'preflight',
        '--config',
        config,
        '--json',
      ]).catch((e: { stdout: string }) => e);
      return Object.fromEntries((JSON.parse(stdout) as { checks: Check[] }).checks.map((c) => [c.name, c]));
    };
    const without = await rows();
    expect(without['veth-peer']).toMatchObject({ ok: true, warning: true });
    expect(without['veth-peer']!.detail).toMatch(new RegExp(`peer \\(ifindex \\d+ in namespace ${peer}\\) has no XDP program`));
    expect(without['vlan-offload']).toMatchObject({ ok: true });
    expect(without['vlan-offload']!.detail).toMatch(/^eth0: rx-vlan-offload \S+.*, tx-vlan-offload \S+/);

    const pass = passObject.program('lab_pass');
    try {
      inNamespace(peer, () => attachProgram('p0', pass, 'native'));
      const withXdp = await rows();
      expect(withXdp['veth-peer']!.warning).toBeUndefined();
      expect(withXdp['veth-peer']!.detail).toMatch(new RegExp(`peer \\(ifindex \\d+ in namespace ${peer}\\) runs XDP`));
    } finally {
      inNamespace(peer, () => detachProgram('p0', 'native'));
      pass.close();
      removeVeth();
    }
  });
});
