/**
 * Two load balancers behind ECMP: a BIRD router (multipath, L4 hash), two LB
 * namespaces each running `xlb serve --bgp --store etcd://...`, one etcd, three
 * backends, one client routed through the router. Config written on one node reaches
 * the other, both build identical rings, flows spread over both, and when one LB dies
 * its routes are withdrawn and its established TCP connections carry on through the
 * other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap } from '@xlb/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { MAPS } from '../control/dataplane/codec.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';

const VIP = LAB.vips4[0];
let lab: Lab;
let daemons: [DaemonProcess, DaemonProcess];

beforeAll(async () => {
  lab = await Lab.create('fleet', { router: true, secondLb: true, etcd: true });
  const args = [
    '--bgp',
    '--bgp-asn',
    String(LAB.lbAsn),
    '--bgp-peer',
    `${LAB.router4}@${LAB.routerAsn}`,
    '--store',
    `etcd://${LAB.etcd4}:2379/xlb-lab`,
  ];
  daemons = [await lab.startDaemon(args, 1), await lab.startDaemon(args, 2)];
  nsRun(lab.ns.client, 'ip', ['route', 'replace', LAB.vipPrefix4, 'via', LAB.router4]);
});
afterAll(() => lab?.destroy());

async function until<T>(read: () => Promise<T> | T, done: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const vipOn = (n: 0 | 1) => daemons[n].api.request<VipView>('GET', vipPath('tcp', VIP, 80)).then((r) => (r.status === 200 ? r.body : null));

/** The VIP's ring as LB n's pinned maps hold it. */
function pinnedRing(n: 1 | 2, vipId: number): Uint32Array {
  const rings = BpfMap.fromPin(join(lab.lbPaths(n).bpffs, MAPS.rings));
  try {
    const id = rings.lookup(Buffer.from(new Uint32Array([vipId]).buffer))!.readUInt32LE(0);
    const ring = BpfMap.fromId(id);
    try {
      const memory = ring.readMapped();
      return Uint32Array.from({ length: memory.length / 8 }, (_, i) => memory.readUInt32LE(i * 8));
    } finally {
      ring.close();
    }
  } finally {
    rings.close();
  }
}

describe('two LBs, one etcd, ECMP', () => {
  test('a VIP configured on one node reaches the other, with identical rings, announced by both', async () => {
    const put = (path: string, body?: unknown) => daemons[0].api.request('PUT', path, body);
    expect(
      (
        await put(vipPath('tcp', VIP, 80), {
          forwarding: 'dsr',
          healthCheck: { type: 'tcp', intervalMs: 200, timeoutMs: 200, rise: 1, fall: 2 },
        })
      ).status,
    ).toBe(201);
    for (const n of BACKENDS) expect((await put(vipPath('tcp', VIP, 80, LAB.backend4(n)))).status).toBe(201);

    for (const n of [0, 1] as const)
      await until(
        () => vipOn(n),
        (v) => v?.ringBackends === 3,
        `LB${n + 1} ring`,
      );
    const vipId = 0; // the first VIP of a fresh store
    expect(pinnedRing(1, vipId)).toEqual(pinnedRing(2, vipId));

    await until(
      () => lab.routerNextHops(VIP),
      (hops) => hops.length === 2,
      'router next hops',
    );
    expect(lab.routerNextHops(VIP)).toEqual([LAB.lb4, LAB.lb2v4].sort());
  });

  test('writers on both nodes at once lose no update (compare-and-swap in etcd)', async () => {
    expect((await daemons[0].api.request('PUT', vipPath('tcp', LAB.vips4[1], 80), { forwarding: 'ipip' })).status).toBe(201);
    await until(
      () => daemons[1].api.request('GET', vipPath('tcp', LAB.vips4[1], 80)).then((r) => r.status),
      (s) => s === 200,
      'VIP on LB2',
    );
    const writes = ([0, 1] as const).flatMap((n) =>
      Array.from({ length: 8 }, (_, i) =>
        daemons[n].api.request('PUT', vipPath('tcp', LAB.vips4[1], 80, `198.18.${7 + n}.${i + 1}`), { weight: 1 }),
      ),
    );
    expect((await Promise.all(writes)).map((r) => r.status)).toEqual(new Array(16).fill(201));
    for (const n of [0, 1] as const) {
      await until(
        () => daemons[n].api.request<VipView>('GET', vipPath('tcp', LAB.vips4[1], 80)).then((r) => r.body.backends.length),
        (count) => count === 16,
        `backends seen by LB${n + 1}`,
      );
    }
  });

  test('flows through the router spread over both LBs', async () => {
    const before = await Promise.all(daemons.map((d) => d.api.request<{ vips: { packets: number }[] }>('GET', '/v1/stats')));
    const summary = await lab.client('tcp', VIP, 300, 16);
    expect(summary.errors).toEqual([]);
    expect(summary.ok).toBe(300);
    const after = await Promise.all(daemons.map((d) => d.api.request<{ vips: { packets: number }[] }>('GET', '/v1/stats')));
    const forwarded = [0, 1].map((n) => after[n]!.body.vips[0]!.packets - (before[n]!.body.vips[0]?.packets ?? 0));
    for (const packets of forwarded) expect(packets).toBeGreaterThan(0);
  });

  test('when an LB dies its routes are withdrawn and established connections survive through the other', async () => {
    const lb1Packets = async () =>
      (await daemons[0].api.request<{ vips: { packets: number }[] }>('GET', '/v1/stats')).body.vips[0]!.packets;
    const before = await lb1Packets();
    const held = lab.hold(VIP, 40, 4000);
    await held.connected;
    // Some of the held connections go through LB1 (ECMP by 5-tuple), so its death matters.
    expect(await lb1Packets()).toBeGreaterThan(before);
    // LB1 dies: its daemon, its BIRD (the router sees the session close), then its link.
    await daemons[0].stop('SIGKILL');
    process.kill(Number(readFileSync(join(lab.lbPaths(1).bird, 'bird.pid'), 'utf8')), 'SIGTERM');
    await until(
      () => lab.routerNextHops(VIP),
      (hops) => hops.length === 1,
      'router next hops after LB1 died',
    );
    expect(lab.routerNextHops(VIP)).toEqual([LAB.lb2v4]);
    nsRun(lab.ns.lb, 'ip', ['link', 'set', 'eth0', 'down']);

    const holding = await held.done;
    expect(holding).toMatchObject({ ok: 40, failed: 0, broken: 0 });
    const fresh = await lab.client('tcp', VIP, 100, 16);
    expect(fresh.ok).toBe(100);
  });
});
