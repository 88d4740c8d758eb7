/**
 * The data plane in memory, for kernel-free unit tests: the balancer's maps as JS
 * Maps holding the same encoded records, with the kernel maps' capacities and errors
 * as Dataplane surfaces them. test/dataplane-model.test.ts drives it and a real
 * TestDataplane through the same reconciles and compares what they hold.
 */
import {
  addrCodec,
  backendCodec,
  configCodec,
  type Family,
  FLOW_WAYS,
  MAPS,
  OUTCOMES,
  type Outcome,
  vipCodec,
  vipKeyCodec,
  type FlowState,
} from '../../control/dataplane/codec.js';
import { clockOf, encodeConfig, withClock } from '../../control/dataplane/config.js';
import { flowTableBuckets } from '../../control/dataplane/flow-table.js';
import type { VipFlowCounts } from '../../control/dataplane/flow-counts.js';
import type { DataplanePort, FlowTableUse, RingBatch } from '../../control/dataplane/port.js';
import { type ProbeDifference, type ProbeEntry, readProbes, repairProbes, writeProbes } from '../../control/dataplane/probes.js';
import type {
  BackendRecord,
  DataplaneConfig,
  Traffic,
  VipAddress,
  VipMapKey,
  VipRecord,
  VipStats,
} from '../../control/dataplane/records.js';

/** What tests read and write beside the port; TestDataplane has the same. */
export interface InspectableDataplane extends DataplanePort {
  readonly maxVips: number;
  readonly maxBackends: number;
  readonly flowCapacity: number;
  setConfig(config: DataplaneConfig): void;
  /** The configuration the data plane holds, decoded. */
  readConfig(): ReturnType<typeof configCodec.decode>;
  setBackend(id: number, backend: BackendRecord): void;
  /** The record in a backend slot, or null when the slot is free. */
  getBackend(id: number): BackendRecord | null;
  setRing(vipId: number, backendIds: Uint32Array): void;
  getRing(vipId: number): Uint32Array | null;
  vipStats(vipId: number): VipStats;
  backendStats(id: number): Traffic;
  close(): void;
}

export interface ModelSizes {
  ringSize: number;
  maxVips: number;
  maxBackends: number;
  /** Flows the connection table holds, as the kernel one rounds it (FLOW_WAYS times a power of two). */
  maxFlows: number;
}

/** An Error as the native addon throws one for a failed bpf() call. */
function bpfError(op: string, code: 'E2BIG', errno: number, text: string): Error {
  return Object.assign(new Error(`${op}: ${text}`), { errno, code, op });
}

/** A BPF hash map: encoded key -> encoded value, refusing a new key when full. */
class HashMap {
  private readonly entries = new Map<string, Buffer>();

  constructor(
    private readonly name: string,
    private readonly capacity: number,
  ) {}

  update(key: Buffer, value: Buffer): void {
    const hex = key.toString('hex');
    if (!this.entries.has(hex) && this.entries.size >= this.capacity) {
      throw bpfError(`bpf_map_update_elem(${this.name})`, 'E2BIG', 7, 'Argument list too long');
    }
    this.entries.set(hex, Buffer.from(value));
  }

  lookup(key: Buffer): Buffer | null {
    return this.entries.get(key.toString('hex')) ?? null;
  }

  delete(key: Buffer): boolean {
    return this.entries.delete(key.toString('hex'));
  }

  keys(): Buffer[] {
    return [...this.entries.keys()].map((hex) => Buffer.from(hex, 'hex'));
  }

  *[Symbol.iterator](): IterableIterator<[Buffer, Buffer]> {
    for (const [hex, value] of this.entries) yield [Buffer.from(hex, 'hex'), value];
  }
}

const zeroTraffic = (): Traffic => ({ packets: 0, bytes: 0 });
const zeroVipStats = (): VipStats => ({
  packets: 0,
  bytes: 0,
  flow_hits: 0,
  flow_misses: 0,
  flow_evicted_new: 0,
  flow_evicted_established: 0,
  flow_evicted_closing: 0,
  flow_unrecorded: 0,
});

function addTraffic<K, T extends Traffic>(counters: Map<K, T>, key: K, zero: () => T, traffic: Traffic): void {
  const held = counters.get(key) ?? zero();
  counters.set(key, { ...held, packets: held.packets + traffic.packets, bytes: held.bytes + traffic.bytes });
}

export class DataplaneModel implements InspectableDataplane {
  readonly ringSize: number;
  readonly maxVips: number;
  readonly maxBackends: number;
  readonly flowCapacity: number;
  /** Flows the connection table holds, in all and by backend id (the model forwards no packets: tests set them). */
  flows = 0;
  backendFlows = new Map<number, number>();
  /** Entries by state, as flowTableUse() reports them (tests set them). */
  flowStates: Record<FlowState, number> = { new: 0, established: 0, closing: 0 };
  /** Each VIP id's new flows so far by CPU, as flowCounts() reports them (tests set them). */
  newFlowsByVip = new Map<number, number[]>();
  /** The online CPUs flowCounts() reports. */
  cpus = 2;
  private readonly vips: HashMap;
  private readonly vipAddresses: HashMap;
  private readonly probes: HashMap;
  private wantedProbes: readonly ProbeEntry[] | null = null;
  private readonly rings = new Map<number, Uint32Array>();
  private readonly backends: Buffer[];
  /** Counters by key; a key absent counts zero. Values are replaced, never changed, so a snapshot is a copy of the map. */
  private readonly vipStatsById = new Map<number, VipStats>();
  private readonly backendStatsById = new Map<number, Traffic>();
  private readonly outcomes = new Map<Outcome, Traffic>();
  private config = configCodec.encode({});

  constructor(sizes: Partial<ModelSizes> = {}) {
    this.ringSize = sizes.ringSize ?? 251;
    this.maxVips = sizes.maxVips ?? 16;
    this.maxBackends = sizes.maxBackends ?? 64;
    this.flowCapacity = flowTableBuckets(sizes.maxFlows ?? 1024) * FLOW_WAYS;
    this.vips = new HashMap(MAPS.vips, this.maxVips);
    this.vipAddresses = new HashMap(MAPS.vipAddresses, this.maxVips);
    this.probes = new HashMap(MAPS.probes, 2 * this.maxBackends);
    this.backends = Array.from({ length: this.maxBackends }, () => Buffer.alloc(backendCodec.size));
  }

  private checkVipId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.maxVips) throw new RangeError(`VIP id ${id} outside 0..${this.maxVips - 1}`);
  }

  private checkBackendId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.maxBackends)
      throw new RangeError(`backend id ${id} outside 0..${this.maxBackends - 1}`);
  }

  // ---- configuration -------------------------------------------------------

  setConfig(config: DataplaneConfig): void {
    this.config = encodeConfig(config, this.config, { ringSize: this.ringSize, flowBuckets: this.flowCapacity / FLOW_WAYS });
  }

  readConfig() {
    return configCodec.decode(this.config);
  }

  /** Every change to the VIP records moves the generation the VIP caches are tagged with (0 is skipped). */
  private bumpVipGeneration(): void {
    const at = configCodec.offsets.vip_generation;
    this.config.writeUInt32LE((this.config.readUInt32LE(at) % 0xffffffff) + 1, at);
  }

  // ---- VIPs and their addresses --------------------------------------------

  setVip(key: VipMapKey, vip: VipRecord): void {
    this.checkVipId(vip.id);
    this.vips.update(encodeVipKey(key), vipCodec.encode(vip));
    this.bumpVipGeneration();
  }

  removeVip(key: VipMapKey): boolean {
    if (!this.vips.delete(encodeVipKey(key))) return false;
    this.bumpVipGeneration();
    return true;
  }

  getVip(key: VipMapKey): VipRecord | null {
    const value = this.vips.lookup(encodeVipKey(key));
    return value ? vipCodec.decode(value) : null;
  }

  listVips(): { key: VipMapKey; vip: VipRecord }[] {
    return [...this.vips].map(([key, value]) => {
      const k = vipKeyCodec.decode(key);
      return { key: { family: k.family as Family, address: k.addr, port: k.port, proto: k.proto }, vip: vipCodec.decode(value) };
    });
  }

  setVipAddress(address: VipAddress, vips: number): void {
    if (!Number.isInteger(vips) || vips < 1) throw new RangeError(`VIP count ${vips} of an address must be a positive integer`);
    const count = Buffer.alloc(4);
    count.writeUInt32LE(vips);
    this.vipAddresses.update(encodeVipAddress(address), count);
  }

  removeVipAddress(address: VipAddress): boolean {
    return this.vipAddresses.delete(encodeVipAddress(address));
  }

  listVipAddresses(): (VipAddress & { vips: number })[] {
    return [...this.vipAddresses].map(([key, value]) => {
      const { addr, family } = addrCodec.decode(key);
      return { family: family as Family, address: addr, vips: value.readUInt32LE(0) };
    });
  }

  // ---- backends ------------------------------------------------------------

  setBackends(backends: ReadonlyMap<number, BackendRecord>): void {
    // Every record is encoded before any is written, as one batch update.
    const encoded = [...backends].map(([id, b]) => {
      this.checkBackendId(id);
      return [id, backendCodec.encode({ addr: b.address, mac: b.mac, family: b.family, flags: b.flags ?? 0, vip_id: b.vipId })] as const;
    });
    for (const [id, value] of encoded) this.backends[id] = value;
  }

  setBackend(id: number, backend: BackendRecord): void {
    this.setBackends(new Map([[id, backend]]));
  }

  removeBackend(id: number): void {
    this.checkBackendId(id);
    this.backends[id] = Buffer.alloc(backendCodec.size);
  }

  getBackend(id: number): BackendRecord | null {
    const value = this.backends[id];
    if (!value) return null;
    const b = backendCodec.decode(value);
    return b.family ? { family: b.family as Family, address: b.addr, mac: b.mac, vipId: b.vip_id, flags: b.flags } : null;
  }

  usedBackendIds(): number[] {
    return this.backends.flatMap((value, id) => (value[backendCodec.offsets.family] ? [id] : []));
  }

  // ---- rings ---------------------------------------------------------------

  ringBatch(): RingBatch {
    const pending = new Map<number, Uint32Array>();
    return {
      set: (vipId, backendIds) => {
        this.checkVipId(vipId);
        if (backendIds.length !== this.ringSize) throw new RangeError(`ring has ${backendIds.length} slots, expected ${this.ringSize}`);
        pending.set(vipId, Uint32Array.from(backendIds)); // a copy: the caller reuses its array
      },
      commit: () => {
        for (const [vipId, ring] of pending) this.rings.set(vipId, ring);
        pending.clear();
      },
      close: () => pending.clear(),
    };
  }

  setRing(vipId: number, backendIds: Uint32Array): void {
    const batch = this.ringBatch();
    batch.set(vipId, backendIds);
    batch.commit();
  }

  getRing(vipId: number): Uint32Array | null {
    const ring = this.rings.get(vipId);
    return ring ? Uint32Array.from(ring) : null;
  }

  removeRing(vipId: number): void {
    this.checkVipId(vipId);
    this.rings.delete(vipId);
  }

  ringIds(): number[] {
    return [...this.rings.keys()].sort((a, b) => a - b);
  }

  // ---- counters ------------------------------------------------------------

  /** Adds traffic as the balancer counts it: to an outcome, a VIP (with its connection-table hits and misses), a backend. */
  count(traffic: Traffic & { outcome?: Outcome; vipId?: number; backendId?: number; flowHits?: number; flowMisses?: number }): void {
    if (traffic.outcome !== undefined) addTraffic(this.outcomes, traffic.outcome, zeroTraffic, traffic);
    if (traffic.vipId !== undefined) {
      addTraffic(this.vipStatsById, traffic.vipId, zeroVipStats, traffic);
      const held = this.vipStatsById.get(traffic.vipId)!;
      this.vipStatsById.set(traffic.vipId, {
        ...held,
        flow_hits: held.flow_hits + (traffic.flowHits ?? 0),
        flow_misses: held.flow_misses + (traffic.flowMisses ?? 0),
      });
    }
    if (traffic.backendId !== undefined) addTraffic(this.backendStatsById, traffic.backendId, zeroTraffic, traffic);
  }

  counters(): Record<Outcome, Traffic> {
    return Object.fromEntries(OUTCOMES.map((name) => [name, this.outcomes.get(name) ?? zeroTraffic()])) as Record<Outcome, Traffic>;
  }

  vipStats(vipId: number): VipStats {
    this.checkVipId(vipId);
    return this.vipStatsById.get(vipId) ?? zeroVipStats();
  }

  backendStats(id: number): Traffic {
    this.checkBackendId(id);
    return this.backendStatsById.get(id) ?? zeroTraffic();
  }

  resetVipStats(vipId: number): void {
    this.checkVipId(vipId);
    this.vipStatsById.delete(vipId);
    this.newFlowsByVip.delete(vipId);
  }

  resetBackendStats(id: number): void {
    this.checkBackendId(id);
    this.backendStatsById.delete(id);
  }

  statsSnapshot(): { vip: (id: number) => VipStats; backend: (id: number) => Traffic } {
    const vips = new Map(this.vipStatsById);
    const backends = new Map(this.backendStatsById);
    return { vip: (id) => vips.get(id) ?? zeroVipStats(), backend: (id) => backends.get(id) ?? zeroTraffic() };
  }

  flowTableUse(): FlowTableUse {
    const byBackend = new Map(this.backendFlows);
    return { slots: this.flowCapacity, flows: this.flows, states: { ...this.flowStates }, backendFlows: (id) => byBackend.get(id) ?? 0 };
  }

  setClock(seconds: number): void {
    this.config = withClock(this.config, seconds);
  }

  clock(): number {
    return clockOf(this.config);
  }

  flowCounts(vipIds: Iterable<number>): Map<number, VipFlowCounts> {
    return new Map(
      [...vipIds].map((id) => {
        this.checkVipId(id);
        const newFlows = this.newFlowsByVip.get(id) ?? [];
        const stats = this.vipStatsById.get(id) ?? zeroVipStats();
        return [
          id,
          {
            newFlows: Array.from({ length: this.cpus }, (_, cpu) => newFlows[cpu] ?? 0),
            evictions: { new: stats.flow_evicted_new, established: stats.flow_evicted_established, closing: stats.flow_evicted_closing },
            unrecorded: stats.flow_unrecorded,
          },
        ];
      }),
    );
  }

  /** Adds to a VIP's stats fields as the balancer counts them (evictions, unrecorded flows). */
  countVip(vipId: number, counts: Partial<VipStats>): void {
    const held = this.vipStatsById.get(vipId) ?? zeroVipStats();
    const sum = { ...held };
    for (const [field, n] of Object.entries(counts) as [keyof VipStats, number][]) sum[field] += n;
    this.vipStatsById.set(vipId, sum);
  }

  setProbes(entries: readonly ProbeEntry[]): void {
    this.wantedProbes = entries;
    writeProbes(this.probes, entries);
  }

  listProbes(): ProbeEntry[] {
    return readProbes(this.probes);
  }

  repairProbes(): ProbeDifference[] {
    return repairProbes(this.probes, this.wantedProbes);
  }

  close(): void {}
}

const encodeVipKey = (key: VipMapKey) => vipKeyCodec.encode({ addr: key.address, port: key.port, proto: key.proto, family: key.family });
const encodeVipAddress = (address: VipAddress) => addrCodec.encode({ addr: address.address, family: address.family });
