/**
 * Map contents that follow from the desired state are written from it: after pins
 * are removed under a running daemon and it restarts, address counts, VIP records,
 * rings and backend records are exactly what the state implies. And a backend is in
 * the ring only while it holds a slot of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { formatAddress } from '../control/net/address.js';
import { MAPS } from '../control/dataplane/codec.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { echoRest, ETH_P_IP, ETH_P_IPV6, ethernet, icmp, icmpv6, ipv4, ipv6, PROTO, XDP } from './lib/packet.js';

const put = (d: TestDaemon, url: string, payload: object = {}) => d.app.inject({ method: 'PUT', url, payload });
const del = (d: TestDaemon, url: string) => d.app.inject({ method: 'DELETE', url });

async function expectStatus(response: Promise<{ statusCode: number; body: string }>, status: number): Promise<void> {
  const { statusCode, body } = await response;
  expect(statusCode, body).toBe(status);
}

/** The data plane as the daemon's desired state implies it, next to what its maps hold. */
function derivedAndHeld(d: TestDaemon) {
  const vips = d.controller.snapshot().vips;
  const addresses = new Map<string, number>();
  for (const vip of vips) addresses.set(vip.address, (addresses.get(vip.address) ?? 0) + 1);
  const sorted = <T>(items: T[]) => [...items].sort();
  return {
    derived: {
      addresses: Object.fromEntries([...addresses].sort()),
      vips: sorted(vips.map((v) => `${v.protocol}/${v.address}/${v.port}=${v.id}`)),
      rings: Object.fromEntries(vips.filter((v) => v.backends.length).map((v) => [v.id, sorted(v.backends.map((b) => b.id))])),
      backends: vips.flatMap((v) => v.backends.map((b) => b.id)).sort((a, b) => a - b),
    },
    held: {
      addresses: Object.fromEntries(
        d.dp
          .listVipAddresses()
          .map((a) => [formatAddress(a.family, a.address), a.vips])
          .sort(),
      ),
      vips: sorted(
        d.dp
          .listVips()
          .map(({ key, vip }) => `${key.proto === 6 ? 'tcp' : 'udp'}/${formatAddress(key.family, key.address)}/${key.port}=${vip.id}`),
      ),
      rings: Object.fromEntries(d.dp.ringIds().map((id) => [id, sorted([...new Set(d.dp.getRing(id))])])),
      backends: d.dp.usedBackendIds(),
    },
  };
}

function expectDerived(d: TestDaemon): void {
  const { derived, held } = derivedAndHeld(d);
  expect(held).toEqual(derived);
}

const CLIENT4 = '198.18.7.100';
const CLIENT6 = '2001:db8:7::100';

/** The balancer's verdict on an echo request to `address`. */
function echoVerdict(d: TestDaemon, address: string): number {
  const frame = address.includes(':')
    ? ethernet(
        '02:00:00:00:07:01',
        '02:00:00:00:07:02',
        ETH_P_IPV6,
        ipv6({
          src: CLIENT6,
          dst: address,
          nextHeader: PROTO.ICMPV6,
          payload: icmpv6({ src: CLIENT6, dst: address }, 128, 0, echoRest(1, 1), Buffer.alloc(8)),
        }),
      )
    : ethernet(
        '02:00:00:00:07:01',
        '02:00:00:00:07:02',
        ETH_P_IP,
        ipv4({ src: CLIENT4, dst: address, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(1, 1), Buffer.alloc(8)) }),
      );
  return d.dp.program.testRun({ data: frame }).retval;
}

/** The maps are what the state implies; echo requests to `answered` are answered, to `passed` go to the host. */
function expectConverged(d: TestDaemon, answered: string[], passed: string[]): void {
  expectDerived(d);
  for (const address of answered) expect(echoVerdict(d, address), address).toBe(XDP.TX);
  for (const address of passed) expect(echoVerdict(d, address), address).toBe(XDP.PASS);
}

const SHARED = '198.19.7.1'; // three VIPs
const ALONE = '198.19.7.2';
const LATER = '198.19.7.4'; // added while pins are missing
const V6 = '2001:db8:7::1';

describe('derived map contents survive pins removed under a running daemon', () => {
  const open: TestDaemon[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  test.each([[['vips']], [['vipAddresses']], [['rings']], [['backends']], [['vips', 'vipAddresses', 'rings', 'backends']]] as const)(
    "pins %j removed: a restart converges to exactly the desired state, and deleted VIPs' addresses stay gone",
    async (removed) => {
      const dir = mkdtempSync(join(tmpdir(), 'xlb-derived-'));
      const pinDir = mkdtempSync('/sys/fs/bpf/xlb-test-derived-');
      dirs.push(dir, pinDir);
      const start = async () => {
        const d = await startTestDaemon({ dir, pinDir });
        open.push(d);
        return d;
      };
      const stop = async (d: TestDaemon) => {
        open.splice(open.indexOf(d), 1);
        await d.close();
      };

      let d = await start();
      for (const [protocol, address, port, backend] of [
        ['tcp', SHARED, 80, '198.18.7.11'],
        ['tcp', SHARED, 443, '198.18.7.12'],
        ['udp', SHARED, 53, '198.18.7.13'],
        ['tcp', ALONE, 80, '198.18.7.14'],
        ['tcp', V6, 80, '2001:db8:7::11'],
      ] as const) {
        await expectStatus(put(d, vipPath(protocol, address, port), { forwarding: 'ipip' }), 201);
        await expectStatus(put(d, vipPath(protocol, address, port, backend)), 201);
      }
      expectDerived(d);

      for (const name of removed) rmSync(join(pinDir, MAPS[name]));
      // The daemon holds its maps: it goes on working and changing them.
      await expectStatus(del(d, vipPath('tcp', ALONE, 80)), 204);
      await expectStatus(put(d, vipPath('tcp', LATER, 80), { forwarding: 'ipip' }), 201);
      await expectStatus(put(d, vipPath('tcp', LATER, 80, '198.18.7.15')), 201);
      expectConverged(d, [LATER, SHARED, V6], [ALONE]);
      await stop(d);

      d = await start();
      expectConverged(d, [LATER, SHARED, V6], [ALONE]);

      await expectStatus(del(d, vipPath('tcp', SHARED, 443)), 204);
      await expectStatus(del(d, vipPath('tcp', V6, 80)), 204);
      expect(derivedAndHeld(d).held.addresses).toEqual({ [SHARED]: 2, [LATER]: 1 });
      expectConverged(d, [LATER, SHARED], [ALONE, V6]);
      await stop(d);

      d = await start();
      expectConverged(d, [LATER, SHARED], [ALONE, V6]);

      // Pins removed again, and the next daemon's state has no VIPs at all.
      for (const name of removed) rmSync(join(pinDir, MAPS[name]));
      await stop(d);
      const emptyStateDir = mkdtempSync(join(tmpdir(), 'xlb-derived-'));
      dirs.push(emptyStateDir);
      d = await startTestDaemon({ dir: emptyStateDir, pinDir });
      open.push(d);
      expect(derivedAndHeld(d).held.addresses).toEqual({});
      expectConverged(d, [], [LATER, SHARED, ALONE, V6]);
    },
  );
});

describe('inRing means slots', () => {
  let d: TestDaemon | undefined;
  afterEach(async () => {
    await d?.close();
    d = undefined;
  });

  const VIP = vipPath('tcp', '198.19.7.9', 80);
  const HEAVY = Array.from({ length: 10 }, (_, i) => `198.18.7.${i + 1}`);
  const LIGHT = '198.18.7.50';

  /** A daemon with M = 251 and the VIP: ten backends at weight 65535, one at 1. */
  async function startWithLightBackend(): Promise<TestDaemon> {
    const daemon = await startTestDaemon({ ringSize: 251 });
    await expectStatus(put(daemon, VIP, { forwarding: 'ipip' }), 201);
    for (const address of HEAVY) await expectStatus(put(daemon, vipPath('tcp', '198.19.7.9', 80, address), { weight: 65535 }), 201);
    await expectStatus(put(daemon, vipPath('tcp', '198.19.7.9', 80, LIGHT), { weight: 1 }), 201);
    return daemon;
  }

  test('a member Maglev gives no slot is out of the ring, with slots 0 and the reason', async () => {
    d = await startWithLightBackend();

    const view = d.controller.vip({ protocol: 'tcp', address: '198.19.7.9', port: 80 });
    const light = view.backends.find((b) => b.address === LIGHT)!;
    expect(light).toMatchObject({ inRing: false, slots: 0, reason: 'weight 1 too small for the ring size (M=251): no slot' });
    const heavy = view.backends.filter((b) => b.address !== LIGHT);
    for (const b of heavy) expect(b).toMatchObject({ inRing: true, reason: null });
    for (const b of heavy) expect(b.slots).toBeGreaterThan(0);
    expect(heavy.reduce((sum, b) => sum + b.slots, 0)).toBe(251);
    expect(view.ringBackends).toBe(10);

    // The ring agrees: none of its slots names the light backend.
    const stored = d.controller.storedVip({ protocol: 'tcp', address: '198.19.7.9', port: 80 })!;
    const lightId = stored.backends.find((b) => b.address === LIGHT)!.id;
    const ring = d.dp.getRing(stored.id)!;
    expect(ring.includes(lightId)).toBe(false);
    for (const b of heavy)
      expect(ring.filter((id) => id === stored.backends.find((s) => s.address === b.address)!.id)).toHaveLength(b.slots);

    const metrics = (await d.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain(`xlb_backend_in_ring{protocol="tcp",address="198.19.7.9",port="80",backend="${LIGHT}"} 0`);
    expect(metrics).toContain(`xlb_backend_in_ring{protocol="tcp",address="198.19.7.9",port="80",backend="${HEAVY[0]}"} 1`);
    expect((await d.app.inject({ method: 'GET', url: '/v1/status' })).json().counts).toMatchObject({ backends: 11, backendsInRing: 10 });
  });

  test('slots follow the ring: kept while it is unchanged, counted anew when it changes', async () => {
    d = await startWithLightBackend();
    const slotsOf = () =>
      Object.fromEntries(d!.controller.vip({ protocol: 'tcp', address: '198.19.7.9', port: 80 }).backends.map((b) => [b.address, b.slots]));
    const before = slotsOf();

    // A VIP setting that leaves the ring as it is keeps the slots counted for it.
    await expectStatus(put(d, VIP, { forwarding: 'ipip', conntrack: false }), 200);
    expect(slotsOf()).toEqual(before);

    await expectStatus(put(d, vipPath('tcp', '198.19.7.9', 80, LIGHT), { weight: 65535 }), 200);
    const light = d.controller.vip({ protocol: 'tcp', address: '198.19.7.9', port: 80 }).backends.find((b) => b.address === LIGHT)!;
    expect(light).toMatchObject({ inRing: true, reason: null });
    expect(light.slots).toBeGreaterThan(0);
    expect(Object.values(slotsOf()).reduce((a, b) => a + b, 0)).toBe(251);
  });
});
