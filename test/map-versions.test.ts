/**
 * Per-map versions across an upgrade. A pin directory an earlier release left, where
 * one map had another layout version, is this release's pins with that one pin renamed
 * to the other version. The new daemon adopts every pin under its own name (the
 * connection table included), replaces the renamed map and unpins the stale name, and
 * the reconciler rewrites what the desired state implies into the new map.
 */
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, onTestFinished, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { parseAddress, parseMac } from '../control/net/address.js';
import { FORWARD_IPIP, MAPS } from '../control/dataplane/codec.js';
import { replacesConnectionTable } from '../control/dataplane/pins.js';
import { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { flowKey, IP, MAC } from './lib/fixture.js';
import { flow4, tcp4, vipKey4 } from './lib/frames.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { parseEthernet, parseIp, XDP } from './lib/packet.js';

type MapName = keyof typeof MAPS;

const config = {
  hashSeed: 1,
  mtu: 1500,
  gatewayMac: parseMac(MAC.gateway),
  sourceV4: parseAddress(IP.source4).bytes,
  sourceV6: Buffer.alloc(16),
  sourceV4FlowBits: 0,
  sourceV6FlowBits: 0,
  flowIdleTimeout: 900,
};

/** `map`'s name at another layout version. */
const atVersion = (map: MapName, version: number) => MAPS[map].replace(/_v\d+$/, `_v${version}`);

/** Makes `dir` look as an earlier release left it, with `map` at layout version 2. */
function pinAsVersion2(dir: string, map: MapName): string {
  const old = atVersion(map, 2);
  renameSync(join(dir, MAPS[map]), join(dir, old));
  return old;
}

function tempPinDir(name: string): string {
  const dir = mkdtempSync(`/sys/fs/bpf/xlb-test-${name}-`);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BACKEND_A = IP.backend4(1);
const BACKEND_B = IP.backend4(2);

/** The backend a TCP segment of the client's flow from `sport` goes to (ipip: the outer destination). */
function backendOf(d: TestDaemon, sport: number, flags: string): string {
  const { retval, data } = d.dp.program.testRun({ data: tcp4({ sport, flags }) });
  expect(retval).toBe(XDP.TX);
  return parseIp(parseEthernet(data).payload).dst;
}

async function expectOk(response: Promise<{ statusCode: number; body: string }>): Promise<void> {
  const { statusCode, body } = await response;
  expect(statusCode, body).toBeLessThan(300);
}

describe('an upgrade where one map has another version', () => {
  const open: TestDaemon[] = [];
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
  });

  /** A daemon over the pin directory, its ipip next hop the gateway. */
  async function start(stateDir: string, pinDir: string): Promise<TestDaemon> {
    const d = await startTestDaemon({ dir: stateDir, pinDir });
    open.push(d);
    d.dp.setConfig(config);
    return d;
  }

  const vip = (backend?: string) => vipPath('tcp', IP.vip4, 80, backend);

  /**
   * A daemon whose VIP sent the client's flow from port 40000 to backend A, restarted
   * over its pins with `map` at version 2; returns the new daemon and the stale name.
   */
  async function restartWithVersion2(map: MapName): Promise<{ d: TestDaemon; pinDir: string; stale: string }> {
    const stateDir = mkdtempSync(join(tmpdir(), 'xlb-mapver-'));
    onTestFinished(() => rmSync(stateDir, { recursive: true, force: true }));
    const pinDir = tempPinDir('mapver');
    const before = await start(stateDir, pinDir);
    await expectOk(before.app.inject({ method: 'PUT', url: vip(), payload: { forwarding: 'ipip' } }));
    await expectOk(before.app.inject({ method: 'PUT', url: vip(BACKEND_A), payload: {} }));
    expect(backendOf(before, 40000, 'S')).toBe(BACKEND_A);
    open.splice(open.indexOf(before), 1);
    await before.close();
    const stale = pinAsVersion2(pinDir, map);
    return { d: await start(stateDir, pinDir), pinDir, stale };
  }

  /** Drains A and adds B: new flows go to B only, established ones stay where the table has them. */
  async function drainAForB(d: TestDaemon): Promise<void> {
    await expectOk(d.app.inject({ method: 'PUT', url: vip(BACKEND_A), payload: { state: 'drain' } }));
    await expectOk(d.app.inject({ method: 'PUT', url: vip(BACKEND_B), payload: {} }));
  }

  test.each<[MapName, string[]]>([
    ['vips', [MAPS.vipCache]],
    ['vipAddresses', []],
    ['rings', []],
    ['backends', []],
    ['vipCache', []],
    ['counters', []],
    ['vipStats', []],
    ['backendStats', []],
  ])('%s at another version: flows are kept, the map is rebuilt from the desired state', async (map, followers) => {
    const { d, pinDir, stale } = await restartWithVersion2(map);
    expect(d.dp.replacedPins.sort()).toEqual([stale, ...followers].sort());
    expect(replacesConnectionTable(d.dp.replacedPins)).toBe(false);
    expect(readdirSync(pinDir)).not.toContain(stale);
    expect(existsSync(join(pinDir, MAPS[map]))).toBe(true);

    await drainAForB(d);
    expect(backendOf(d, 40000, 'A')).toBe(BACKEND_A);
    expect(backendOf(d, 40001, 'S')).toBe(BACKEND_B);
  });

  test.each<[MapName, string[]]>([
    ['flows', []],
    ['config', [MAPS.flows, MAPS.vipCache]],
  ])('%s at another version: a new connection table, established flows re-hash', async (map, followers) => {
    const { d, pinDir, stale } = await restartWithVersion2(map);
    expect(d.dp.replacedPins.sort()).toEqual([stale, ...followers].sort());
    expect(replacesConnectionTable(d.dp.replacedPins)).toBe(true);
    expect(readdirSync(pinDir)).not.toContain(stale);
    expect(d.dp.lookupFlow(flowKey(flow4()))).toBeNull();

    await drainAForB(d);
    expect(backendOf(d, 40000, 'A')).toBe(BACKEND_B);
  });
});

describe('the VIP cache is made afresh with the map it caches and the generation it is tagged with', () => {
  test.each<MapName>(['config', 'vips'])('%s at another version: no cache entry of the old maps is used', (map) => {
    const dir = tempPinDir('mapver-cache');
    const openPinned = () => TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
    let dp = openPinned();
    try {
      dp.setConfig(config);
      dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: FORWARD_IPIP });
      dp.setVip(vipKey4(81), { id: 2, flags: 0, forwarding: FORWARD_IPIP });
      dp.setBackend(1, { family: 4, address: parseAddress(BACKEND_A).bytes, mac: Buffer.alloc(6), vipId: 1 });
      dp.setRing(1, new Uint32Array(13).fill(1));
      expect(dp.program.testRun({ data: tcp4() }).retval).toBe(XDP.TX); // cached at generation 2
      dp.close();

      pinAsVersion2(dir, map);
      dp = openPinned();
      dp.setConfig(config);
      // With a fresh config the generation starts again: two changes bring it back to 2.
      if (map === 'config') {
        dp.removeVip(vipKey4(80));
        dp.setVip(vipKey4(82), { id: 3, flags: 0, forwarding: FORWARD_IPIP });
      }
      expect(dp.getVip(vipKey4(80))).toBeNull();
      expect(dp.program.testRun({ data: tcp4() }).retval).toBe(XDP.PASS);
    } finally {
      dp.close();
    }
  });
});
