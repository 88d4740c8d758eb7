/**
 * Pinned maps across a daemon restart: adopted when their layout matches, made afresh
 * when it does not, with the connection table's keys and the VIP cache generation kept.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { describe, expect, onTestFinished, test } from 'vitest';
import type { DataplaneOptions } from '../control/dataplane/load.js';
import { TestDataplane, testConfig } from '../control/dataplane/test-dataplane.js';
import { parseAddress, parseMac } from '../control/net/address.js';
import { MAPS, OUTCOMES } from '../control/dataplane/codec.js';
import { flowKey, IP, MAC } from './lib/fixture.js';
import { flow4, tcp4, vipKey4 } from './lib/frames.js';
import { parseEthernet, XDP } from './lib/packet.js';

/** The config each daemon here writes. */
const config = testConfig();

/** A fresh pin directory on bpffs, removed when the test ends (after its own cleanup). */
function tempPinDir(name: string): string {
  const dir = mkdtempSync(`/sys/fs/bpf/xlb-test-${name}-`);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A data plane pinned in `pinDir`, small maps unless `sizes` says otherwise. */
const openPinned = (pinDir: string, sizes: Pick<DataplaneOptions, 'ringSize' | 'maxVips' | 'maxFlows'> = {}) =>
  TestDataplane.open({ pinDir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64, ...sizes });

describe('pinned maps are adopted across a daemon restart', () => {
  test('pinned rings are adopted at the same ring size and replaced at another', () => {
    const dir = tempPinDir('rings');
    const open = (ringSize: number) => openPinned(dir, { ringSize });
    let dp = open(13);
    try {
      dp.setConfig(config);
      dp.setRing(1, new Uint32Array(13).fill(3));
      dp.close();
      dp = open(13);
      expect(dp.getRing(1)).toEqual(new Uint32Array(13).fill(3));
      dp.close();
      dp = open(17);
      expect(dp.getRing(1)).toBeNull();
      dp.setConfig(config);
      dp.setBackend(4, { family: 4, address: parseAddress(IP.backend4(4)).bytes, mac: parseMac(MAC.backend(4)), vipId: 1 });
      dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: 1 });
      dp.setRing(1, new Uint32Array(17).fill(4));
      expect(parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst).toBe(MAC.backend(4));
    } finally {
      dp.close();
    }
  });

  test('pinned maps of another size are made afresh at the new size; maps of the same size are adopted', () => {
    const dir = tempPinDir('sizes');
    const open = (sizes: { maxVips?: number; maxFlows?: number } = {}) => openPinned(dir, sizes);
    const forwarded = (dp: TestDataplane) => parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst;
    let dp = open();
    try {
      dp.setConfig(config);
      dp.setBackend(4, { family: 4, address: parseAddress(IP.backend4(4)).bytes, mac: parseMac(MAC.backend(4)), vipId: 1 });
      dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: 1 });
      dp.setRing(1, new Uint32Array(13).fill(4));
      expect(forwarded(dp)).toBe(MAC.backend(4));
      dp.close();

      dp = open();
      expect(dp.replacedPins).toEqual([]);
      expect(dp.lookupFlow(flowKey(flow4()))).toBe(4);
      dp.close();

      dp = open({ maxFlows: 4096 });
      expect(dp.replacedPins).toEqual([MAPS.flows]);
      expect(dp.flowCapacity).toBe(4096);
      expect(dp.lookupFlow(flowKey(flow4()))).toBeNull(); // a new, empty table
      expect(forwarded(dp)).toBe(MAC.backend(4)); // VIP, backend and ring adopted
      dp.close();

      dp = open({ maxVips: 16, maxFlows: 4096 });
      // The VIP cache goes with the VIP map it caches.
      expect(dp.replacedPins.sort()).toEqual([MAPS.rings, MAPS.vipAddresses, MAPS.vips, MAPS.vipStats, MAPS.vipCache].sort());
      expect(dp.getRing(1)).toBeNull();
    } finally {
      dp.close();
    }
  });

  test('a pinned outcome-counter map of a release with fewer outcomes is made afresh', () => {
    const dir = tempPinDir('outcomes');
    const name = MAPS.counters;
    const entries = String(OUTCOMES.length - 1);
    execFileSync('bpftool', [
      'map',
      'create',
      `${dir}/${name}`,
      'type',
      'percpu_array',
      'key',
      '4',
      'value',
      '16',
      'entries',
      entries,
      'name',
      name,
    ]);
    const dp = openPinned(dir);
    try {
      expect(dp.replacedPins).toContain(name);
      expect(Object.keys(dp.counters())).toEqual([...OUTCOMES]);
    } finally {
      dp.close();
    }
  });

  test('opening with a pin directory unpins xlb maps under names the objects do not have, and only those', () => {
    const dir = tempPinDir('stale');
    const pin = (name: string) =>
      execFileSync('bpftool', [
        'map',
        'create',
        `${dir}/${name}`,
        'type',
        'array',
        'key',
        '4',
        'value',
        '4',
        'entries',
        '1',
        'name',
        'stale',
      ]);
    pin('xlb_flows_v1');
    pin('xlb_retired_v3');
    pin('operator_map');
    openPinned(dir).close();
    const names = readdirSync(dir);
    expect(names).not.toContain('xlb_flows_v1');
    expect(names).not.toContain('xlb_retired_v3');
    expect(names).toContain('operator_map');
    expect(names).toContain(MAPS.flows);
  });

  test('a daemon adopting pinned maps keeps the table keys, so recorded flows still hit', () => {
    const dir = tempPinDir('keys');
    // 65,536 buckets: new keys would move the flow to another bucket but by a 2^-16 chance.
    const open = () => openPinned(dir, { maxFlows: 1 << 18 });
    let dp = open();
    try {
      dp.setConfig(config);
      dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: 1 });
      for (const n of [1, 2])
        dp.setBackend(n, { family: 4, address: parseAddress(IP.backend4(n)).bytes, mac: parseMac(MAC.backend(n)), vipId: 1 });
      dp.setRing(1, new Uint32Array(13).fill(1));
      expect(parseEthernet(dp.program.testRun({ data: tcp4() }).data).dst).toBe(MAC.backend(1));
      dp.close();
      dp = open();
      dp.setConfig(config);
      dp.setRing(1, new Uint32Array(13).fill(2)); // new flows would go to backend 2
      expect(dp.lookupFlow(flowKey(flow4()))).toBe(1);
      expect(parseEthernet(dp.program.testRun({ data: tcp4({ flags: 'A' }) }).data).dst).toBe(MAC.backend(1));
    } finally {
      dp.close();
    }
  });

  test('a daemon adopting pinned maps carries the generation on, so old entries stay dead', () => {
    const dir = tempPinDir('cache');
    const open = () => openPinned(dir);
    const frame = tcp4();
    let dp = open();
    try {
      dp.setConfig(config);
      dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: 1 });
      dp.setVip(vipKey4(81), { id: 2, flags: 0, forwarding: 1 });
      dp.setBackend(1, { family: 4, address: parseAddress(IP.backend4(1)).bytes, mac: parseMac(MAC.backend(1)), vipId: 1 });
      dp.setRing(1, new Uint32Array(13).fill(1));
      expect(dp.program.testRun({ data: frame }).retval).toBe(XDP.TX); // cached at the current generation
      dp.close();
      dp = open();
      dp.removeVip(vipKey4(80));
      dp.setVip(vipKey4(82), { id: 3, flags: 0, forwarding: 1 });
      expect(dp.program.testRun({ data: frame }).retval).toBe(XDP.PASS);
    } finally {
      dp.close();
    }
  });
});
