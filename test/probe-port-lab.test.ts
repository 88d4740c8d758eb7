/**
 * The via-vip probe ports against other processes on the LB, in the netns lab with
 * `xlb serve`: the daemon reserves them in its namespace's ip_local_reserved_ports
 * (keeping what was there) and, like `xlb preflight`, warns of an ephemeral range
 * that reaches into them; and a process that binds the port a backend's check
 * probes from does not take the backend down: the check moves to another port and passes;
 * one that binds every TCP/IPv4 probe port leaves the check waiting, its backend as it
 * was, until it lets one go: the check then probes from that port, with no config change.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BpfMap } from '@xlb/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { StatusView, VipView } from '../control/controller/views.js';
import type { Check } from '../control/deploy/preflight.js';
import { IPPROTO_TCP } from '../control/dataplane/codec.js';
import { kernelProbeMap, readProbes } from '../control/dataplane/probes.js';
import { readStateFile } from '../control/state/state-file.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';
import { CLI } from './lib/cli.js';

const RESERVED = '/proc/sys/net/ipv4/ip_local_reserved_ports';
/** What the LB's namespace reserves before the daemon starts: it must keep these. */
const RESERVED_BEFORE = '1000,2000-2010';
/** The LB's ephemeral range, reaching into the probe ports. */
const EPHEMERAL = [1024, 65535] as const;
const OVERLAP_NOTE =
  'net.ipv4.ip_local_port_range 1024-65535 overlaps the health-check probe ports 61440-65535, which xlb serve reserves ' +
  'in net.ipv4.ip_local_reserved_ports: outgoing connections keep 60416 ephemeral ports';
const CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 150, rise: 1, fall: 1 } as const;

let lab: Lab;
let daemon: DaemonProcess;
let hostReserved: string;

beforeAll(async () => {
  lab = await Lab.create('pport');
  hostReserved = readFileSync(RESERVED, 'utf8');
  nsRun(lab.ns.lb, 'sysctl', ['-q', '-w', `net.ipv4.ip_local_reserved_ports=${RESERVED_BEFORE}`]);
  nsRun(lab.ns.lb, 'sysctl', ['-q', '-w', `net.ipv4.ip_local_port_range=${EPHEMERAL.join(' ')}`]);
  daemon = await lab.startDaemon();
});
afterAll(() => lab?.destroy());

const api = (method: string, path: string, body?: unknown) => daemon.call<VipView>(method, path, body);

/** Polls until `done` holds, or fails after `timeoutMs` naming `what`. */
async function until<T>(what: string, read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The local port the TCP probe entry of backend `id` names, from the pinned map (undefined: none). */
function probePortOf(id: number): number | undefined {
  const map = BpfMap.fromPin(join(lab.lbPaths(1).bpffs, 'xlb_probes_v1'));
  try {
    return readProbes(kernelProbeMap(map)).find((e) => e.backendId === id && e.proto === IPPROTO_TCP && e.port === LAB.tcpPort)?.localPort;
  } finally {
    map.close();
  }
}

/** A process in the LB's namespace listening on TCP `port` (no SO_REUSEADDR), once it listens. */
async function holdPort(port: number): Promise<ChildProcess> {
  const script =
    'import socket, sys\n' +
    's = socket.socket()\n' +
    `s.bind(("0.0.0.0", ${port}))\n` +
    's.listen()\n' +
    'print("listening", flush=True)\n' +
    'sys.stdin.read()\n';
  const child = spawn('nsenter', [`--net=/run/netns/${lab.ns.lb}`, 'python3', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  expect(line).toBe('listening');
  return child;
}

/**
 * A process in the LB's namespace binding TCP/IPv4 `ports` on 0.0.0.0 (no SO_REUSEADDR,
 * no listen: invisible to /proc/net/tcp), once bound; `release(port)` closes one.
 */
async function holdPorts(ports: [low: number, high: number]) {
  const script =
    'import resource, socket, sys, time\n' +
    'hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n' +
    'resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n' +
    'held = {}\n' +
    `for attempt in range(100):\n` +
    `    for port in range(${ports[0]}, ${ports[1]} + 1):\n` +
    '        if port in held: continue\n' +
    '        s = socket.socket()\n' +
    '        try:\n' +
    '            s.bind(("0.0.0.0", port))\n' +
    '            held[port] = s\n' +
    '        except OSError:\n' +
    '            s.close()\n' +
    `    if len(held) == ${ports[1] - ports[0] + 1}: break\n` +
    '    time.sleep(0.02)\n' +
    'print("held", len(held), flush=True)\n' +
    'for line in sys.stdin:\n' +
    '    held.pop(int(line)).close()\n' +
    '    print("released", int(line), flush=True)\n';
  const child = spawn('nsenter', [`--net=/run/netns/${lab.ns.lb}`, 'python3', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => ((await lines.next()).value as string | undefined) ?? 'exited';
  expect(await next()).toBe(`held ${ports[1] - ports[0] + 1}`);
  const release = async (port: number) => {
    child.stdin.write(`${port}\n`);
    expect(await next()).toBe(`released ${port}`);
  };
  return { child, release };
}

/** The probe-ports check of `xlb preflight` in the LB's namespace. */
function preflightProbePorts(): Check | undefined {
  const preflight = spawnSync(
    'nsenter',
    [`--net=/run/netns/${lab.ns.lb}`, process.execPath, CLI, 'preflight', '--iface', 'eth0', '--xdp-mode', 'generic', '--json'],
    { encoding: 'utf8' },
  );
  return (JSON.parse(preflight.stdout) as { checks: Check[] }).checks.find((c) => c.name === 'probe-ports');
}

describe('the probe ports', () => {
  test('xlb serve reserves them in its namespace, keeping what was reserved there', () => {
    expect(nsRun(lab.ns.lb, 'cat', [RESERVED]).trim()).toBe(`${RESERVED_BEFORE},61440-65535`);
    expect(readFileSync(RESERVED, 'utf8')).toBe(hostReserved);
  });

  test('an ephemeral range reaching into them: xlb serve (its status warnings) and xlb preflight say so', async () => {
    expect((await daemon.call<StatusView>('GET', '/v1/status')).warnings).toContain(OVERLAP_NOTE);
    expect(preflightProbePorts()).toEqual({ name: 'probe-ports', ok: true, warning: true, detail: OVERLAP_NOTE });
  });

  test('a process on the port a check probes from: the backend stays up, its check moves to another port and passes', async () => {
    const vip = LAB.vips4[1];
    const path = vipPath('tcp', vip, LAB.tcpPort);
    await api('PUT', path, { forwarding: 'dsr', healthCheck: CHECK });
    for (const n of BACKENDS) await api('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)));
    await until(
      'all up',
      () => api('GET', path),
      (v) => v.backends.length === 3 && v.backends.every((b) => b.health === 'up'),
    );

    const b1 = LAB.backend4(1);
    const id = readStateFile(lab.lbPaths(1).state)
      .vips.find((v) => v.address === vip && v.port === LAB.tcpPort)!
      .backends.find((b) => b.address === b1)!.id;
    const taken = probePortOf(id)!;
    expect(taken).toBeGreaterThanOrEqual(61440);

    const holder = await holdPort(taken);
    /** Every health b1 showed while the port was taken. */
    const seen = new Set<string>();
    const b1View = async () => {
      const backend = (await api('GET', path)).backends.find((b) => b.address === b1)!;
      seen.add(backend.health);
      return backend;
    };
    try {
      const takenAt = Date.now();
      const moved = await until(
        'the check moves off the taken port and passes',
        async () => ({ port: probePortOf(id), backend: await b1View() }),
        ({ port, backend }) =>
          port !== undefined && port !== taken && backend.healthReason === null && Date.parse(backend.lastCheckAt ?? '') > takenAt,
      );
      const movedAt = Date.parse(moved.backend.lastCheckAt!);
      // Three more intervals: still up, no failure recorded against it, still on the new port.
      const after = await until('three more checks', b1View, (b) => Date.parse(b.lastCheckAt ?? '') > movedAt + 3 * CHECK.intervalMs);
      expect(after).toMatchObject({ health: 'up', healthReason: null, lastFailureReason: null, inRing: true });
      expect(probePortOf(id)).toBe(moved.port);
    } finally {
      holder.kill();
    }
    expect([...seen]).toEqual(['up']);
    await api('DELETE', path);
  });

  test('a process holding every TCP/IPv4 probe port: the check waits, its backend stays up, and it probes from a port let go', async () => {
    // The hold limit (interval × fall, 20 s) is past the slowest trial bind of a freed port (4096 ports, 1024 each 2 s).
    const check = { type: 'tcp', intervalMs: 500, timeoutMs: 300, rise: 1, fall: 40 } as const;
    const vip = LAB.vips4[2];
    const path = vipPath('tcp', vip, LAB.tcpPort);
    const b1 = LAB.backend4(1);
    await api('PUT', path, { forwarding: 'dsr', healthCheck: check });
    await api('PUT', vipPath('tcp', vip, LAB.tcpPort, b1));
    const b1View = async () => (await api('GET', path)).backends.find((b) => b.address === b1)!;
    await until('up', b1View, (b) => b.health === 'up' && b.healthReason === null);
    const id = readStateFile(lab.lbPaths(1).state)
      .vips.find((v) => v.address === vip && v.port === LAB.tcpPort)!
      .backends.find((b) => b.address === b1)!.id;

    const holder = await holdPorts([61440, 65535]);
    const seen = new Set<string>();
    try {
      const waiting = await until(
        'the check waits for a probe port',
        async () => ({ port: probePortOf(id), backend: await b1View(), status: await daemon.call<StatusView>('GET', '/v1/status') }),
        ({ port, backend }) => port === undefined && (backend.healthReason ?? '').startsWith('waiting for a probe port'),
      );
      seen.add(waiting.backend.health);
      expect(waiting.backend).toMatchObject({
        health: 'up',
        inRing: true,
        lastFailureReason: null,
        healthReason:
          `waiting for a probe port: all 4096 free probe ports for ${vip} port 80 (tcp/IPv4, 61440-65535) ` +
          'are held by other processes on the LB',
      });
      expect(waiting.status.warnings).toContainEqual(
        expect.stringMatching(/^other processes on the LB hold \d+ of the health-check probe ports 61440-65535 \(tcp\/IPv4 \d+/),
      );

      expect(preflightProbePorts()).toEqual({
        name: 'probe-ports',
        ok: true,
        warning: true,
        detail:
          `${OVERLAP_NOTE}; other processes on the LB hold 4096 of the health-check probe ports 61440-65535 (tcp/IPv4 4096): ` +
          'via-vip checks cannot probe from them',
      });

      const freed = 63000;
      await holder.release(freed);
      const releasedAt = Date.now();
      const resumed = await until(
        'the check probes from the port let go and passes',
        async () => ({ port: probePortOf(id), backend: await b1View() }),
        ({ port, backend }) => {
          seen.add(backend.health);
          return port === freed && backend.healthReason === null && Date.parse(backend.lastCheckAt ?? '') > releasedAt;
        },
        15_000,
      );
      expect(resumed.backend).toMatchObject({ health: 'up', inRing: true, lastFailureReason: null });
    } finally {
      holder.child.kill();
    }
    expect([...seen]).toEqual(['up']);
    await api('DELETE', path);
  }, 60_000);
});
