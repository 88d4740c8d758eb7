/**
 * The connection table through BPF_PROG_TEST_RUN: flows keep their backend across ring
 * changes, re-hash when it is gone, a full table evicts its least recently used flows,
 * and the program hashes the flows test/map-layouts.txt records as recorded.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BpfMap } from '@xlb/native';
import { flowHash, tableHash } from '../control/dataplane/hash.js';
import { parseAddress, parseMac } from '../control/net/address.js';
import {
  BACKEND_F_UNHEALTHY,
  configCodec,
  FLOW_WAYS,
  flowEntryCodec,
  IPPROTO_TCP,
  IPPROTO_UDP,
  DEFAULT_FLOW_IDLE_TIMEOUT,
  MAPS,
  VIP_F_NO_CONNTRACK,
} from '../control/dataplane/codec.js';
import { u32Bytes } from '../control/dataplane/struct.js';
import { BalancerFixture, flowKey, IP, MAC } from './lib/fixture.js';
import { backendMac, backendNumber, backends4, backends6, flow4, flow6, tcp4, tcp6, udp4 } from './lib/frames.js';
import { TABLE_HASH_FLOWS, TABLE_HASH_KEY } from './lib/map-layouts.js';
import { parseEthernet, XDP } from './lib/packet.js';

let f: BalancerFixture;
afterEach(() => f?.close());

describe('connection table', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
  });

  test('a new flow is recorded and its next packet is a table hit', () => {
    const backend = f.ringBackend(1, flow4());
    f.run(tcp4());
    expect(f.dp.lookupFlow(flowKey(flow4()))).toBe(backend);
    f.run(tcp4({ flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ packets: 2, flow_misses: 1, flow_hits: 1 });
  });

  test('an IPv6 flow is recorded (its addresses folded for the bucket) and its next packet is a hit', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
    const backend = f.ringBackend(2, flow6());
    f.run(tcp6());
    expect(f.dp.lookupFlow(flowKey(flow6()))).toBe(backend);
    expect(f.dp.lookupFlow(flowKey(flow6(40001)))).toBeNull();
    f.run(tcp6({ flags: 'A' }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 2, flow_misses: 1, flow_hits: 1 });
  });

  test('IPv6 clients whose addresses XOR-fold alike are still different flows (the source fold is keyed)', () => {
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
    // Flipping the same bit in two words keeps the XOR of the address's words.
    const twin = '2001:db8::1:0:11';
    expect(IP.client6).toBe('2001:db8::10');
    f.run(tcp6());
    f.run(tcp6({ src: twin }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 2, flow_misses: 2, flow_hits: 0 });
    expect(f.dp.lookupFlow(flowKey({ ...flow6(), src: twin }))).toBe(f.ringBackend(2, { ...flow6(), src: twin }));
    expect(f.dp.lookupFlow(flowKey(flow6()))).toBe(f.ringBackend(2, flow6()));
  });

  test('established flows keep their backend when the ring changes; new flows follow the new ring', () => {
    const sports = Array.from({ length: 60 }, (_, i) => 30000 + i);
    const first = new Map(sports.map((sport) => [sport, parseEthernet(f.run(tcp4({ sport })).data).dst]));
    const grown = [...backends4(1), ...[4, 5, 6].map((n) => ({ id: 10 + n, address: IP.backend4(n), mac: MAC.backend(n) }))];
    f.setRing(1, grown);
    for (const sport of sports) expect(parseEthernet(f.run(tcp4({ sport, flags: 'A' })).data).dst).toBe(first.get(sport));
    let movedByRing = 0;
    for (let sport = 50000; sport < 50060; sport++) {
      const expected = backendMac(f.ringBackend(1, flow4(sport)));
      expect(parseEthernet(f.run(tcp4({ sport })).data).dst).toBe(expected);
      if ([4, 5, 6].some((n) => expected === MAC.backend(n))) movedByRing++;
    }
    expect(movedByRing).toBeGreaterThan(0);
  });

  test("a removed backend's flows are re-hashed onto the ring and re-recorded", () => {
    const sports = Array.from({ length: 40 }, (_, i) => 20000 + i);
    for (const sport of sports) f.run(tcp4({ sport }));
    const victim = f.dp.lookupFlow(flowKey(flow4(sports[0])))!;
    const survivors = backends4(1).filter((b) => b.id !== victim);
    f.dp.removeBackend(victim);
    f.setRing(1, survivors);
    for (const sport of sports) {
      const { data } = f.run(tcp4({ sport, flags: 'A' }));
      expect(parseEthernet(data).dst).not.toBe(MAC.backend(victim));
      expect(f.dp.lookupFlow(flowKey(flow4(sport)))).not.toBe(victim);
    }
  });

  test('a flow whose backend slot now belongs to another VIP is re-hashed', () => {
    f.run(tcp4());
    const pinned = f.dp.lookupFlow(flowKey(flow4()))!;
    // The slot is reused for VIP 2; VIP 1's ring no longer has it.
    f.dp.setBackend(pinned, { family: 4, address: Buffer.alloc(16), mac: Buffer.from([2, 0, 0, 0, 9, 9]), vipId: 2 });
    f.setRing(
      1,
      backends4(1).filter((b) => b.id !== pinned),
    );
    const { data } = f.run(tcp4({ flags: 'A' }));
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4())));
  });

  test('flows pinned to a backend marked unhealthy re-hash; drained (unmarked) ones stay', () => {
    const sports = Array.from({ length: 30 }, (_, i) => 21000 + i);
    for (const sport of sports) f.run(tcp4({ sport }));
    const first = sports[0]!;
    const pinned = f.dp.lookupFlow(flowKey(flow4(first)))!;
    const others = backends4(1).filter((b) => b.id !== pinned);
    // Drained: out of the ring, record unchanged: its flows keep going.
    f.setRing(1, others);
    f.dp.setBackend(pinned, {
      family: 4,
      address: parseAddress(IP.backend4(backendNumber(pinned))).bytes,
      mac: parseMac(backendMac(pinned)),
      vipId: 1,
    });
    expect(parseEthernet(f.run(tcp4({ sport: first, flags: 'A' })).data).dst).toBe(backendMac(pinned));
    // Unhealthy: the same flow now re-hashes onto the ring.
    f.dp.setBackend(pinned, {
      family: 4,
      address: parseAddress(IP.backend4(backendNumber(pinned))).bytes,
      mac: parseMac(backendMac(pinned)),
      vipId: 1,
      flags: BACKEND_F_UNHEALTHY,
    });
    const { data } = f.run(tcp4({ sport: first, flags: 'A' }));
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4(first))));
    expect(parseEthernet(data).dst).not.toBe(backendMac(pinned));
    expect(f.dp.lookupFlow(flowKey(flow4(first)))).not.toBe(pinned);
  });

  test('a stats snapshot reads every VIP and backend counter in one batch, as single lookups do', () => {
    for (let sport = 5000; sport < 5030; sport++) f.run(tcp4({ sport }));
    const snapshot = f.dp.statsSnapshot();
    expect(snapshot.vip(1)).toEqual(f.dp.vipStats(1));
    expect(snapshot.vip(1)).toMatchObject({ packets: 30, flow_misses: 30 });
    let total = 0;
    for (const b of backends4(1)) {
      expect(snapshot.backend(b.id)).toEqual(f.dp.backendStats(b.id));
      total += snapshot.backend(b.id).packets;
    }
    expect(total).toBe(30);
  });

  test('a VIP with conntrack off records nothing and always follows the ring', () => {
    f.addVip({ id: 2, address: IP.vip4, port: 81, forwarding: 'dsr', flags: VIP_F_NO_CONNTRACK, backends: backends4(2) });
    f.run(tcp4({ dport: 81 }));
    expect(f.dp.lookupFlow(flowKey(flow4(40000, 81)))).toBeNull();
    f.setRing(2, [{ id: 8, address: IP.backend4(8), mac: MAC.backend(8) }]);
    expect(parseEthernet(f.run(tcp4({ dport: 81, flags: 'A' })).data).dst).toBe(MAC.backend(8));
    expect(f.dp.vipStats(2)).toMatchObject({ flow_hits: 0, flow_misses: 0, packets: 2 });
  });

  test('the table holds the flows set at load time; forwarding goes on when it is full', () => {
    f.close();
    f = new BalancerFixture({ maxFlows: 128 });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    for (let sport = 10000; sport < 10600; sport++) expect(f.run(tcp4({ sport })).verdict).toBe(XDP.TX);
    expect(f.dp.countFlows()).toBeLessThanOrEqual(128);
    expect(f.dp.countFlows()).toBeGreaterThan(0);
  });
});

describe('connection table eviction and seeds', () => {
  afterEach(() => f?.close());

  test('a full bucket evicts its oldest new flow, never an established one', () => {
    f = new BalancerFixture({ maxFlows: 4 }); // one bucket of four ways
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const held = (sport: number) => f.dp.lookupFlow(flowKey(flow4(sport))) !== null;
    f.dp.setClock(9);
    f.run(tcp4({ sport: 1000 }));
    f.run(tcp4({ sport: 1000, flags: 'A' })); // established, and the oldest
    for (const sport of [1001, 1002, 1003]) {
      f.dp.setClock(sport - 991); // 10, 11, 12
      f.run(tcp4({ sport }));
    }
    f.dp.setClock(13);
    f.run(tcp4({ sport: 1004 }));
    f.run(tcp4({ sport: 1005 }));
    expect([1000, 1001, 1002, 1003, 1004, 1005].map(held)).toEqual([true, false, false, true, true, true]);
    // Protected until its last packet's second plus the idle timeout; a new flow, never.
    expect(f.dp.findFlow(flowKey(flow4(1000)))).toMatchObject({ state: 'established', expires: 9 + DEFAULT_FLOW_IDLE_TIMEOUT });
    expect(f.dp.findFlow(flowKey(flow4(1004)))).toMatchObject({ state: 'new', expires: 13 });
    expect(f.dp.vipStats(1)).toMatchObject({ flow_evicted_new: 2, flow_evicted_established: 0, flow_unrecorded: 0 });
    expect(f.dp.flowTableUse().states).toEqual({ new: 3, established: 1, closing: 0 });
    expect(f.dp.flowCapacity).toBe(4);
  });

  test('a TCP flow is established by a later packet that is no SYN, a UDP flow by its second; FIN and RST close it', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'dsr', backends: backends4(2) });
    const state = (sport: number, proto = IPPROTO_TCP) =>
      f.dp.findFlow(flowKey(flow4(sport, proto === IPPROTO_TCP ? 80 : 53, proto)))?.state;
    f.run(tcp4({ sport: 2000 }));
    f.run(tcp4({ sport: 2000 })); // a retransmitted SYN proves nothing
    expect(state(2000)).toBe('new');
    f.run(tcp4({ sport: 2000, flags: 'A' }));
    expect(state(2000)).toBe('established');
    f.run(tcp4({ sport: 2000, flags: 'FA' }));
    expect(state(2000)).toBe('closing');
    f.run(tcp4({ sport: 2000, flags: 'A' })); // the last ACK: still closing
    expect(state(2000)).toBe('closing');
    f.run(tcp4({ sport: 2000 })); // the 4-tuple reused for a new connection
    expect(state(2000)).toBe('new');
    f.run(tcp4({ sport: 2001, flags: 'A' })); // picked up mid-connection: new until its next packet
    expect(state(2001)).toBe('new');
    f.run(tcp4({ sport: 2002, flags: 'R' })); // an RST opens nothing
    expect(state(2002)).toBe('closing');
    f.run(tcp4({ sport: 2003, flags: 'PA' }));
    f.run(tcp4({ sport: 2003, flags: 'RA' }));
    expect(state(2003)).toBe('closing');
    // A client that resets sends no more: a later segment shows the RST was someone else's.
    f.run(tcp4({ sport: 2003, flags: 'PA' }));
    expect(state(2003)).toBe('established');
    f.run(tcp4({ sport: 2003, flags: 'RA' }));
    f.run(tcp4({ sport: 2003, flags: 'R' })); // its RST again: still closing
    expect(state(2003)).toBe('closing');
    f.run(udp4({ sport: 3000 }));
    expect(state(3000, IPPROTO_UDP)).toBe('new');
    f.run(udp4({ sport: 3000 }));
    expect(state(3000, IPPROTO_UDP)).toBe('established');
  });

  test('a closing flow goes after new ones while it still sends, first once idle 10 s; an established flow idle for the timeout goes once nothing else can', () => {
    f = new BalancerFixture({ maxFlows: 4, config: { flowIdleTimeout: 100 } });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const held = (sport: number) => f.dp.lookupFlow(flowKey(flow4(sport))) !== null;
    const establish = (sport: number) => {
      f.run(tcp4({ sport }));
      f.run(tcp4({ sport, flags: 'A' }));
    };
    f.dp.setClock(1000);
    establish(1000);
    f.dp.setClock(1001);
    establish(1001);
    establish(1002);
    f.run(tcp4({ sport: 1002, flags: 'FA' })); // the client's FIN, the server still sending (half-close)
    f.run(tcp4({ sport: 1003 }));
    f.run(tcp4({ sport: 1004 })); // takes the new flow's way, not the closing one's
    expect([1000, 1001, 1002, 1003, 1004].map(held)).toEqual([true, true, true, false, true]);
    f.dp.setClock(1010);
    f.run(tcp4({ sport: 1002, flags: 'A' })); // still sending at 1010: closing, not idle
    f.dp.setClock(1019);
    f.run(tcp4({ sport: 1005 }));
    expect([held(1002), held(1004), held(1005)]).toEqual([true, false, true]);
    f.dp.setClock(1020); // the closing flow idle 10 s: it goes before the new one
    f.run(tcp4({ sport: 1006 }));
    expect([held(1002), held(1005), held(1006)]).toEqual([false, true, true]);
    establish(1005);
    establish(1006);
    // Every way established: 1000 idle 100 s (the timeout) goes, the others (99 s and less) stay.
    f.dp.setClock(1100);
    establish(1007);
    expect([held(1000), held(1007)]).toEqual([false, true]);
    // Then no way will take a new flow: it goes by the ring, unrecorded.
    expect(f.run(tcp4({ sport: 1008 })).verdict).toBe(XDP.TX);
    expect(held(1008)).toBe(false);
    expect([1001, 1005, 1006, 1007].map(held)).toEqual([true, true, true, true]);
    expect(f.dp.vipStats(1)).toMatchObject({
      flow_evicted_closing: 1,
      flow_evicted_established: 1,
      flow_evicted_new: 2,
      flow_unrecorded: 1,
    });
    // Ages are right across the 24-bit clock's wrap.
    f.dp.setClock(2 ** 24 + 1101 + 100);
    f.run(tcp4({ sport: 1008 }));
    expect(held(1008)).toBe(true);
  });

  test("a flood of new flows from random sources takes no established flow's way: they keep their backend through a ring change", () => {
    f = new BalancerFixture({ maxFlows: 1024 }); // 256 buckets
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const clients = Array.from({ length: 300 }, (_, i) => ({ src: `198.18.${2 + (i >> 8)}.${i & 255}`, sport: 30000 + i }));
    const entryOf = (c: { src: string; sport: number }) =>
      f.dp.lookupFlow(flowKey({ src: c.src, dst: IP.vip4, sport: c.sport, dport: 80, proto: IPPROTO_TCP }));
    for (const c of clients) {
      f.run(tcp4(c));
      f.run(tcp4({ ...c, flags: 'A' }));
    }
    const recorded = clients.map(entryOf);
    const established = f.dp.flowTableUse().states.established;
    expect(established).toBe(recorded.filter((id) => id !== null).length);
    expect(established).toBeGreaterThan(270); // a few land in buckets already full of established flows
    // 20,000 SYNs from other sources: twenty times the table.
    for (let i = 0; i < 20_000; i++) f.run(tcp4({ src: `198.19.${(i >> 8) & 255}.${i & 255}`, sport: 1024 + (i >> 16) }));
    expect(f.dp.vipStats(1).flow_evicted_new).toBeGreaterThan(15_000);
    expect(f.dp.vipStats(1).flow_evicted_established).toBe(0);
    f.setRing(1, [...backends4(1), ...[4, 5].map((n) => ({ id: 10 + n, address: IP.backend4(n), mac: MAC.backend(n) }))]);
    expect(clients.map(entryOf)).toEqual(recorded);
    clients.forEach((c, i) => {
      if (recorded[i] !== null) expect(parseEthernet(f.run(tcp4({ ...c, flags: 'A' })).data).dst).toBe(backendMac(recorded[i]!));
    });
  });

  test('a full bucket records new flows in its neighbour while that has room, then evicts its own oldest new flow', () => {
    f = new BalancerFixture({ maxFlows: 8 }); // two buckets, each the other's neighbour
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const sports: number[] = [];
    for (let sport = 1000; sports.length < 9; sport++) if (f.dp.bucketsOfFlow(flowKey(flow4(sport))).bucket === 0) sports.push(sport);
    const held = (sport: number) => f.dp.lookupFlow(flowKey(flow4(sport))) !== null;
    f.dp.setClock(1);
    for (const sport of sports.slice(0, 2)) f.run(tcp4({ sport }));
    f.dp.setClock(2);
    for (const sport of sports.slice(2, 8)) f.run(tcp4({ sport }));
    // Four in bucket 0, four in its neighbour: all held, and the neighbour's still hit.
    expect(sports.slice(0, 8).filter(held)).toEqual(sports.slice(0, 8));
    expect(f.dp.countFlows()).toBe(8);
    for (const sport of sports.slice(4, 8)) f.run(tcp4({ sport, flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ flow_misses: 8, flow_hits: 4 });
    // Both full: a new flow evicts bucket 0's oldest new flow, not an established one (the neighbour holds only those).
    f.run(tcp4({ sport: sports[0]!, flags: 'A' }));
    f.run(tcp4({ sport: sports[8]! }));
    expect([held(sports[0]!), held(sports[1]!), held(sports[8]!)]).toEqual([true, false, true]);
    expect(sports.slice(2, 8).every(held)).toBe(true);
  });

  test("the table's use is counted in a sample of buckets and scaled to the whole table", () => {
    f = new BalancerFixture({ maxFlows: 4096 }); // 1024 buckets
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    for (let sport = 20000; sport < 22000; sport++) f.run(tcp4({ sport }));
    const held = f.dp.countFlows();
    const whole = f.dp.flowTableUse();
    expect(whole).toMatchObject({ slots: 4096, flows: held });
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    const ids = backends4(1).map((b) => b.id);
    expect(sum(ids.map(whole.backendFlows))).toBe(held);
    // A quarter of the buckets holds about a quarter of the flows (2000 at random: within 25%).
    const estimate = f.dp.flowTableUse(256);
    expect(estimate.slots).toBe(4096);
    expect(Math.abs(estimate.flows - held)).toBeLessThan(held / 4);
    // Each backend's count is scaled like the total (each rounded: off by less than one each).
    expect(Math.abs(sum(ids.map(estimate.backendFlows)) - estimate.flows)).toBeLessThan(ids.length);
  });

  test('traffic to a VIP whose forwarding code the program does not know takes and evicts no way', () => {
    f = new BalancerFixture({ maxFlows: 4 }); // one bucket of four ways
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 81, forwarding: 7, backends: backends4(2) });
    for (let sport = 1000; sport < 1004; sport++) f.run(tcp4({ sport }));
    for (let sport = 2000; sport < 2008; sport++) expect(f.run(tcp4({ sport, dport: 81 })).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ tx_dsr: 4, drop_unknown_forwarding: 8 });
    for (let sport = 1000; sport < 1004; sport++) expect(f.dp.lookupFlow(flowKey(flow4(sport))), `flow ${sport}`).not.toBeNull();
    expect(f.dp.lookupFlow(flowKey(flow4(2000, 81)))).toBeNull();
    expect(f.dp.countFlows()).toBe(4);
  });

  test("flows that share an IPv4 fingerprint (same client and ports) but not a VIP never take each other's backend", () => {
    f = new BalancerFixture({ maxFlows: 4 }); // one bucket: same client and ports give the same tag and check
    const vip2 = '198.19.0.2';
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: vip2, port: 80, forwarding: 'dsr', backends: backends4(2) });
    const toVip2 = { ...flow4(), dst: vip2 };
    f.run(tcp4());
    expect(f.dp.lookupFlow(flowKey(flow4()))).toBe(f.ringBackend(1, flow4()));
    f.run(tcp4({ dst: vip2, flags: 'A' }));
    expect(f.dp.vipStats(2)).toMatchObject({ packets: 1, flow_hits: 0, flow_misses: 1 });
    expect(f.dp.backendStats(f.ringBackend(2, toVip2)).packets).toBe(1);
    // The entry (same way) now holds VIP 2's backend; VIP 1's flow misses and is recorded again.
    f.run(tcp4({ flags: 'A' }));
    expect(f.dp.vipStats(1)).toMatchObject({ packets: 2, flow_hits: 0, flow_misses: 2 });
    expect(f.dp.backendStats(f.ringBackend(1, flow4())).packets).toBe(2);
  });

  test('a new hash seed re-spreads new flows but keeps established ones', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const sports = Array.from({ length: 40 }, (_, i) => 30000 + i);
    const first = new Map(sports.map((sport) => [sport, parseEthernet(f.run(tcp4({ sport })).data).dst]));
    const seed = f.config.hashSeed + 1;
    f.dp.setConfig({ ...f.config, hashSeed: seed });
    const ring = f.dp.getRing(1)!;
    const moved = sports.filter(
      (sport) => backendMac(ring[flowHash(flowKey(flow4(sport)), 0, seed) % f.dp.ringSize]!) !== first.get(sport),
    );
    expect(moved.length).toBeGreaterThan(0);
    for (const sport of sports) expect(parseEthernet(f.run(tcp4({ sport, flags: 'A' })).data).dst).toBe(first.get(sport));
  });
});

/** The maps the fixture's program uses, by name (the kernel's, at most 15 characters). */
function programMaps(): Map<string, BpfMap> {
  const info = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(f.dp.program.info.id)], { encoding: 'utf8' }));
  return new Map((info.map_ids as number[]).map((id) => BpfMap.fromId(id)).map((map) => [map.info.name, map]));
}

describe("the connection table's recorded hash (test/map-layouts.txt)", () => {
  test('the balancer files the recorded flows in the bucket, tag and check the record names', () => {
    const buckets = 1 << 16; // the bucket's low 16 bits are compared
    f = new BalancerFixture({ maxFlows: FLOW_WAYS * buckets });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(2) });
    const cases = [
      { vipId: 1, flow: flow4(), frame: tcp4() },
      { vipId: 2, flow: flow6(), frame: tcp6() },
    ];
    expect(cases.map(({ flow }) => flow)).toEqual(TABLE_HASH_FLOWS);
    const maps = programMaps();
    try {
      const config = maps.get(MAPS.config)!;
      config.update(u32Bytes(0), configCodec.encode({ ...configCodec.decode(config.lookup(u32Bytes(0))!), flow_key: TABLE_HASH_KEY }));
      for (const { vipId, flow, frame } of cases) {
        expect(f.run(frame).verdict).toBe(XDP.TX);
        const { bucket, tag, check } = tableHash(flowKey(flow), TABLE_HASH_KEY);
        const ways = maps.get(MAPS.flows)!.lookup(u32Bytes(bucket & (buckets - 1)))!;
        const entries = Array.from({ length: FLOW_WAYS }, (_, way) => flowEntryCodec.decode(ways, way * flowEntryCodec.size));
        const backendId = f.ringBackend(vipId, flow);
        const held = entries.filter((entry) => entry.tag !== 0 || entry.check !== 0);
        expect(held).toMatchObject([{ tag, backend_id: backendId, check: (check ^ backendId) >>> 0 }]);
      }
    } finally {
      for (const map of maps.values()) map.close();
    }
  });
});
