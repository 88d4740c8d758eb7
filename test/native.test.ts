/** The libbpf binding: errors, maps, map-in-map, pinning, test runs and XDP attach. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BpfMap,
  BpfObject,
  type BpfError,
  closeFd,
  ifNameToIndex,
  lockFile,
  possibleCpus,
  xdpAttach,
  xdpDetach,
  xdpQuery,
} from '@xlb/native';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { BALANCER_OBJECT, DECAP_OBJECT, MAPS, TRACE_OBJECT } from '../control/dataplane/codec.js';
import { u32Bytes } from '../control/dataplane/struct.js';
import { TestDataplane } from '../control/dataplane/test-dataplane.js';
import { parseAddress } from '../control/net/address.js';
import { IP, MAC } from './lib/fixture.js';
import { inNamespace, Namespaces, nsRun } from '../scripts/lab/netns.js';
import { echoRest, ETH_P_IP, ethernet, icmp, ipv4, PROTO } from './lib/packet.js';

const REJECTED_OBJECT = BALANCER_OBJECT.replace('xlb_balancer', 'verifier_reject');
const ARRAY = 2;
const HASH = 1;
const PERCPU_ARRAY = 6;
const BPF_F_MMAPABLE = 0x400;
const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
const PASS_OBJECT = BALANCER_OBJECT.replace('xlb_balancer', 'lab_pass');

function thrown(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (error) {
    return error as BpfError;
  }
  throw new Error('expected a throw');
}

describe('errors', () => {
  test('a missing object throws with errno, code and the failing call', () => {
    const error = thrown(() => new BpfObject('/nonexistent/x.bpf.o'));
    expect(error.errno).toBe(2);
    expect(error.code).toBe('ENOENT');
    expect(error.op).toMatch(/bpf_object__open_file/);
  });

  test('a verifier rejection carries the verifier log', () => {
    const error = thrown(() => new BpfObject(REJECTED_OBJECT));
    expect(error.code).toBe('EACCES');
    expect(error.op).toMatch(/bpf_object__load/);
    expect(error.verifierLog).toMatch(/invalid access to packet/);
  });

  test('a size override for a map that does not exist is refused', () => {
    expect(thrown(() => new BpfObject(DECAP_OBJECT, { maxEntries: { nope: 1 } })).code).toBe('ENOENT');
  });

  test('a closed map throws EBADF instead of touching a stale descriptor', () => {
    const map = BpfMap.create(ARRAY, 4, 4, 4, 'closed');
    map.close();
    expect(thrown(() => map.lookup(u32Bytes(0))).code).toBe('EBADF');
  });

  test('keys and values of the wrong size are refused naming the sizes', () => {
    const map = BpfMap.create(HASH, 4, 8, 4, 'sizes');
    try {
      expect(() => map.lookup(Buffer.alloc(3))).toThrow(/key of map sizes must be 4 bytes, got 3/);
      expect(() => map.update(u32Bytes(1), Buffer.alloc(4))).toThrow(/value of map sizes must be 8 bytes, got 4/);
      expect(() => map.update(u32Bytes(1), 'x' as unknown as Buffer)).toThrow(TypeError);
    } finally {
      map.close();
    }
  });
});

describe('maps', () => {
  test('update, lookup, delete and iterate a hash map', () => {
    const map = BpfMap.create(HASH, 4, 4, 16, 'crud');
    try {
      expect(map.lookup(u32Bytes(7))).toBeNull();
      for (const k of [3, 1, 2]) map.update(u32Bytes(k), u32Bytes(k * 10));
      expect(map.lookup(u32Bytes(2))).toEqual(u32Bytes(20));
      const keys: number[] = [];
      for (let k = map.nextKey(null); k; k = map.nextKey(k)) keys.push(k.readUInt32LE(0));
      expect(keys.sort()).toEqual([1, 2, 3]);
      expect(map.delete(u32Bytes(2))).toBe(true);
      expect(map.delete(u32Bytes(2))).toBe(false);
      expect(thrown(() => map.update(u32Bytes(1), u32Bytes(0), 1 /* BPF_NOEXIST */)).code).toBe('EEXIST');
      expect(map.info).toMatchObject({ name: 'crud', keySize: 4, valueSize: 4, maxEntries: 16, perCpu: false });
    } finally {
      map.close();
    }
  });

  test('batch update writes every element in one call', () => {
    const map = BpfMap.create(ARRAY, 4, 4, 1000, 'batch');
    try {
      const keys = Buffer.concat(Array.from({ length: 1000 }, (_, i) => u32Bytes(i)));
      const values = Buffer.concat(Array.from({ length: 1000 }, (_, i) => u32Bytes(i * 3)));
      map.updateBatch(keys, values, 1000);
      expect(map.lookup(u32Bytes(999))).toEqual(u32Bytes(2997));
      expect(() => map.updateBatch(keys, values.subarray(4), 1000)).toThrow(/values .* must be 4000 bytes/);
    } finally {
      map.close();
    }
  });

  test('an mmapable array is written with one copy, values in 8-byte slots', () => {
    const map = BpfMap.create(ARRAY, 4, 4, 3, 'mapped', BPF_F_MMAPABLE);
    const plain = BpfMap.create(ARRAY, 4, 4, 3, 'plain');
    try {
      map.writeMapped(Buffer.from(new Uint32Array([7, 0, 8, 0, 9, 0]).buffer));
      expect([0, 1, 2].map((i) => map.lookup(u32Bytes(i))!.readUInt32LE(0))).toEqual([7, 8, 9]);
      map.update(u32Bytes(1), u32Bytes(80));
      expect(map.readMapped()).toEqual(Buffer.from(new Uint32Array([7, 0, 80, 0, 9, 0]).buffer));
      expect(map.readMapped(12)).toEqual(Buffer.from(new Uint32Array([7, 0, 80]).buffer));
      for (const bad of [25, -1, 1.5, '8']) expect(() => map.readMapped(bad as number)).toThrow(/whole number of bytes up to 24/);
      expect(() => map.writeMapped(Buffer.alloc(25))).toThrow(/at most 24 bytes/);
      expect(() => plain.writeMapped(Buffer.alloc(4))).toThrow(/BPF_F_MMAPABLE/);
      expect(() => plain.readMapped()).toThrow(/BPF_F_MMAPABLE/);
    } finally {
      map.close();
      plain.close();
    }
  });

  test('per-CPU lookups return one 8-byte slot per possible CPU', () => {
    const map = BpfMap.create(PERCPU_ARRAY, 4, 4, 1, 'percpu');
    try {
      expect(map.info.perCpu).toBe(true);
      expect(map.lookup(u32Bytes(0))!.length).toBe(8 * possibleCpus());
    } finally {
      map.close();
    }
  });

  test('lookupAll reads a whole map in batches: array, per-CPU array and hash', () => {
    const array = BpfMap.create(ARRAY, 4, 4, 3000, 'all_array');
    const percpu = BpfMap.create(PERCPU_ARRAY, 4, 12, 5, 'all_percpu');
    const hash = BpfMap.create(HASH, 4, 4, 64, 'all_hash');
    try {
      array.updateBatch(
        Buffer.concat(Array.from({ length: 3000 }, (_, i) => u32Bytes(i))),
        Buffer.concat(Array.from({ length: 3000 }, (_, i) => u32Bytes(i * 7))),
        3000,
      );
      const a = array.lookupAll();
      expect(a.count).toBe(3000);
      expect(a.keys.readUInt32LE(4 * 2999)).toBe(2999);
      expect(a.values.readUInt32LE(4 * 2999)).toBe(2999 * 7);
      const slot = 16; // 12 bytes padded to 8
      const value = Buffer.alloc(slot * possibleCpus());
      value.writeUInt32LE(42, slot * (possibleCpus() - 1));
      percpu.update(u32Bytes(4), value);
      const p = percpu.lookupAll();
      expect(p.count).toBe(5);
      expect(p.values.subarray(4 * value.length, 5 * value.length)).toEqual(value);
      for (const k of [3, 9, 27]) hash.update(u32Bytes(k), u32Bytes(k + 1));
      const h = hash.lookupAll();
      const entries = Array.from({ length: h.count }, (_, i): [number, number] => [
        h.keys.readUInt32LE(i * 4),
        h.values.readUInt32LE(i * 4),
      ]);
      expect(entries.sort((x, y) => x[0] - y[0])).toEqual([
        [3, 4],
        [9, 10],
        [27, 28],
      ]);
    } finally {
      for (const m of [array, percpu, hash]) m.close();
    }
  });

  test('map-in-map: an inner map is stored by descriptor and read back by id; the template size is ours to set', () => {
    const object = new BpfObject(BALANCER_OBJECT, { maxEntries: { [MAPS.rings]: 2 }, innerMaxEntries: { [MAPS.rings]: 11 } });
    const rings = object.map(MAPS.rings);
    // Rings must match the template exactly: type, sizes, flags (BPF_F_MMAPABLE) and entries.
    const ring = BpfMap.create(ARRAY, 4, 8, 11, 'ring', BPF_F_MMAPABLE);
    const longer = BpfMap.create(ARRAY, 4, 8, 12, 'longer', BPF_F_MMAPABLE);
    const plain = BpfMap.create(ARRAY, 4, 8, 11, 'plain');
    try {
      ring.update(u32Bytes(5), Buffer.from([55, 0, 0, 0, 56, 0, 0, 0]));
      rings.update(u32Bytes(1), ring);
      const id = rings.lookup(u32Bytes(1))!.readUInt32LE(0);
      expect(id).toBe(ring.info.id);
      const again = BpfMap.fromId(id);
      expect(again.lookup(u32Bytes(5))).toEqual(Buffer.from([55, 0, 0, 0, 56, 0, 0, 0]));
      again.close();
      expect(thrown(() => rings.update(u32Bytes(0), plain)).code).toBe('EINVAL');
      expect(thrown(() => rings.update(u32Bytes(0), longer)).code).toBe('EINVAL');
    } finally {
      for (const m of [ring, longer, plain, rings]) m.close();
      object.close();
    }
  });

  test('an inner-map size for a map that is not a map-in-map is refused', () => {
    expect(thrown(() => new BpfObject(BALANCER_OBJECT, { innerMaxEntries: { [MAPS.flows]: 11 } })).code).toBe('ENOENT');
  });
});

describe('pinning', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const pinDir = () => {
    const dir = mkdtempSync('/sys/fs/bpf/xlb-test-');
    dirs.push(dir);
    return dir;
  };

  test('maps are pinned by name and a second load adopts them with their contents', () => {
    const dir = pinDir();
    const first = TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
    first.setBackend(3, { family: 4, address: Buffer.from([198, 18, 1, 3, ...new Array(12).fill(0)]), mac: Buffer.alloc(6), vipId: 1 });
    first.setRing(1, new Uint32Array(13).fill(3));
    first.close();
    expect(readdirSync(dir).sort()).toEqual(
      Object.values(MAPS)
        .filter((n) => !n.includes('decap') && !n.includes('dcounter'))
        .sort(),
    );

    const second = TestDataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 });
    try {
      expect(second.getRing(1)).toEqual(new Uint32Array(13).fill(3));
    } finally {
      second.close();
    }
  });

  test('a pin with another size is not silently reused (the error names the map)', () => {
    const dir = pinDir();
    new BpfObject(BALANCER_OBJECT, { pinDir: dir, maxEntries: { [MAPS.flows]: 16 } }).close();
    const error = thrown(() => new BpfObject(BALANCER_OBJECT, { pinDir: dir, maxEntries: { [MAPS.flows]: 32 } }));
    expect(error.op).toMatch(/bpf_object__load/);
    expect(error.verifierLog).toContain(MAPS.flows);
  });
});

describe("a second load on the first one's maps", () => {
  test('reuseMaps: the load uses the maps handed to it as they are, and makes the others', () => {
    const first = new BpfObject(BALANCER_OBJECT, { maxEntries: { [MAPS.backends]: 16 } });
    const backends = first.map(MAPS.backends);
    const second = new BpfObject(TRACE_OBJECT, { reuseMaps: { [MAPS.backends]: backends } });
    try {
      const shared = second.map(MAPS.backends);
      expect(shared.info).toMatchObject({ id: backends.info.id, maxEntries: 16 });
      backends.update(u32Bytes(3), Buffer.alloc(28, 7));
      expect(shared.lookup(u32Bytes(3))).toEqual(Buffer.alloc(28, 7));
      expect(second.map(MAPS.vips).info.id).not.toBe(first.map(MAPS.vips).info.id);
      shared.close();
    } finally {
      backends.close();
      second.close();
      first.close();
    }
  });

  test('a map to reuse that is no map, or not in the object, and reuse with pins are refused', () => {
    expect(thrown(() => new BpfObject(BALANCER_OBJECT, { reuseMaps: { [MAPS.vips]: {} as BpfMap } })).message).toMatch(/must be a BpfMap/);
    const map = BpfMap.create(ARRAY, 4, 4, 1, 'reuse_test');
    try {
      expect(thrown(() => new BpfObject(BALANCER_OBJECT, { reuseMaps: { nowhere: map } })).code).toBe('ENOENT');
      const error = thrown(() => new BpfObject(BALANCER_OBJECT, { pinDir: '/sys/fs/bpf', reuseMaps: { [MAPS.config]: map } }));
      expect(error.message).toMatch(/reuseMaps and pinDir/);
    } finally {
      map.close();
    }
  });
});

describe('file locks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('lockFile creates the file and locks it exclusively until closeFd', () => {
    const path = join(dir, 'a.lock');
    const fd = lockFile(path);
    try {
      const error = thrown(() => lockFile(path));
      expect(error).toMatchObject({ code: 'EAGAIN', errno: 11, op: `flock(${path})` });
    } finally {
      closeFd(fd);
    }
    closeFd(lockFile(path));
  });

  test('a child process does not inherit the lock', async () => {
    const path = join(dir, 'b.lock');
    const fd = lockFile(path);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      closeFd(fd);
      closeFd(lockFile(path));
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('errors carry errno, code and the call', () => {
    expect(thrown(() => lockFile(join(dir, 'missing', 'c.lock')))).toMatchObject({ code: 'ENOENT', op: expect.stringMatching(/^open\(/) });
    expect(thrown(() => closeFd(-1))).toMatchObject({ code: 'EBADF' });
  });
});

describe('BPF_PROG_TEST_RUN', () => {
  test('returns verdict, output bytes and a per-run duration over repeats', () => {
    const dp = TestDataplane.open({ maxFlows: 64 });
    try {
      const arp = Buffer.alloc(60);
      arp.writeUInt16BE(0x0806, 12);
      const result = dp.program.testRun({ data: arp, repeat: 1000 });
      expect(result.retval).toBe(2);
      expect(result.data).toEqual(arp);
      expect(result.duration).toBeGreaterThan(0);
      expect(dp.counters().pass_non_ip.packets).toBe(1000);
    } finally {
      dp.close();
    }
  });
});

describe('XDP attach on a veth in a namespace', () => {
  const namespaces = new Namespaces('native');
  afterAll(() => namespaces.cleanup());

  test.each(['native', 'generic'] as const)('%s: attach, replace atomically, refuse a stale replace, detach', (mode) => {
    const ns = namespaces.create(mode.slice(0, 3));
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
    nsRun(ns, 'ip', ['link', 'set', 'veth1', 'up']);
    const dp = TestDataplane.open({ maxFlows: 64 });
    const decapObject = new BpfObject(DECAP_OBJECT);
    const decap = decapObject.program('xlb_decap');
    try {
      inNamespace(ns, () => {
        const ifindex = ifNameToIndex('veth0');
        expect(xdpQuery(ifindex, mode)).toBe(0);
        xdpAttach(ifindex, dp.program, { mode });
        expect(xdpQuery(ifindex, mode)).toBe(dp.program.info.id);
        expect(thrown(() => xdpAttach(ifindex, decap, { mode, onlyIfNone: true })).code).toBe('EBUSY');
        xdpAttach(ifindex, decap, { mode, replace: dp.program });
        expect(xdpQuery(ifindex, mode)).toBe(decap.info.id);
        expect(thrown(() => xdpAttach(ifindex, decap, { mode, replace: dp.program })).code).toBe('EEXIST');
        xdpDetach(ifindex, mode);
        expect(xdpQuery(ifindex, mode)).toBe(0);
      });
      expect(() => ifNameToIndex('veth0')).toThrow(/if_nametoindex/);
    } finally {
      decap.close();
      decapObject.close();
      dp.close();
    }
  });
});

describe('BPF_PROG_TEST_RUN with live frames', () => {
  const namespaces = new Namespaces('live');
  afterAll(() => namespaces.cleanup());

  test('XDP_TX frames are really sent out of the interface', async () => {
    const ns = namespaces.create('gen');
    // No IPv6: its neighbour discovery and MLD would add frames to the count.
    for (const scope of ['all', 'default']) nsRun(ns, 'sysctl', ['-qw', `net.ipv6.conf.${scope}.disable_ipv6=1`]);
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    for (const dev of ['veth0', 'veth1']) nsRun(ns, 'ip', ['link', 'set', dev, 'up']);
    const pass = new BpfObject(PASS_OBJECT);
    const passProgram = pass.program('lab_pass');
    const dp = TestDataplane.open({ maxFlows: 64, ringSize: 13 });
    try {
      const rxPackets = () => JSON.parse(nsRun(ns, 'ip', ['-j', '-s', 'link', 'show', 'veth1']))[0].stats64.rx.packets as number;
      inNamespace(ns, () => xdpAttach(ifNameToIndex('veth1'), passProgram, { mode: 'native' }));
      // An echo request to a VIP address is answered with XDP_TX.
      dp.setVipAddress({ family: 4, address: parseAddress(IP.vip4).bytes }, 1);
      dp.setVip({ family: 4, address: parseAddress(IP.vip4).bytes, port: 80, proto: 6 }, { id: 0, flags: 0, forwarding: 1 });
      const echo = ethernet(
        MAC.lb,
        MAC.client,
        ETH_P_IP,
        ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.ICMP, payload: icmp(8, 0, echoRest(1, 1), Buffer.alloc(32)) }),
      );
      const before = rxPackets();
      const ifindex = inNamespace(ns, () => ifNameToIndex('veth0'));
      // Observed on this kernel: a live run whose program returns XDP_TX ends after
      // one batch (64 frames), so senders call it in a loop.
      const run = () => inNamespace(ns, () => dp.program.testRun({ data: echo, repeat: 64, flags: BPF_F_TEST_XDP_LIVE_FRAMES, ifindex }));
      const result = run();
      run();
      expect(result.data.length).toBe(0);
      expect(dp.counters().tx_icmp_echo_reply.packets).toBe(128);
      // The receiving end's NAPI runs after the syscall returns: wait for the count.
      await vi.waitFor(() => expect(rxPackets() - before).toBe(128), { timeout: 5000, interval: 20 });
    } finally {
      passProgram.close();
      pass.close();
      dp.close();
    }
  });
});
