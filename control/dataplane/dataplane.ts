/**
 * Typed API over the balancer object: open (and adopt pinned maps, see load.ts),
 * configure, set/remove VIPs and backends, swap rings, read stats, attach. Mechanism
 * only: which backends go in a ring, and why, is the reconciler's business.
 */
import { type BpfMap, type BpfObject, type BpfProgram, possibleCpus, type XdpMode } from '@xlb/native';
import {
  addrCodec,
  backendCodec,
  configCodec,
  type Family,
  FLOW_WAYS,
  flowEntryCodec,
  MAPS,
  OUTCOMES,
  type Outcome,
  PROGRAMS,
  trafficCodec,
  vipCodec,
  vipKeyCodec,
  vipStatsCodec,
} from './codec.js';
import { attachProgram, attachProbeProgram } from './attach.js';
import { CaptureTap } from './capture.js';
import { clockOf, encodeConfig, withClock } from './config.js';
import { DryRun, type DryRunResult } from './dry-run.js';
import { countFlows, flowTableBuckets } from './flow-table.js';
import { type DataplaneOptions, type DataplaneSizes, loadBalancer } from './load.js';
import type { DataplanePort, FlowTableUse, RingBatch } from './port.js';
import {
  kernelProbeMap,
  type ProbeDifference,
  type ProbeEntry,
  type ProbeKey,
  readProbeSent,
  readProbes,
  repairProbes,
  writeProbes,
} from './probes.js';
import type { BackendRecord, DataplaneConfig, Traffic, VipAddress, VipMapKey, VipRecord, VipStats } from './records.js';
import { createRing } from './rings.js';
import { onlineCpus, perCpuTable, perCpuValues } from './per-cpu.js';
import { type VipFlowCounts, vipFlowCounts } from './flow-counts.js';
import { perCpuSlot, sumPerCpu, u32Bytes } from './struct.js';

/** A zero value for a per-CPU map: one 8-byte-aligned slot per possible CPU. */
const perCpuZero = (size: number) => Buffer.alloc(perCpuSlot(size) * possibleCpus());

/** Buckets flowTableUse() reads at most (4 MiB). */
const FLOW_SAMPLE_BUCKETS = 65536;

const encodeVipKey = (key: VipMapKey) => vipKeyCodec.encode({ addr: key.address, port: key.port, proto: key.proto, family: key.family });

const encodeVipAddress = (address: VipAddress) => addrCodec.encode({ addr: address.address, family: address.family });

export class Dataplane implements DataplanePort {
  readonly ringSize: number;
  readonly maxVips: number;
  readonly maxBackends: number;
  /** Flows the connection table holds. */
  readonly flowCapacity: number;
  readonly program: BpfProgram;
  /** The tc egress program that sends via-vip health-check probes (balancer/probe.h). */
  readonly probeProgram: BpfProgram;
  private readonly object: BpfObject;
  private readonly maps: Record<keyof typeof MAPS, BpfMap | undefined>;
  /** The configuration last written (with the current VIP generation). */
  protected config: Buffer;
  /** Loaded on the first trace(), on these maps. */
  private dryRun: DryRun | undefined;
  /** The probe entries last set, for repairProbes (none before the first). */
  private wantedProbes: readonly ProbeEntry[] | null = null;

  protected constructor(
    object: BpfObject,
    options: DataplaneSizes,
    /** Pinned maps open() did not adopt (another version or size, or following one made afresh). */
    readonly replacedPins: string[],
  ) {
    this.object = object;
    this.ringSize = options.ringSize;
    this.maxVips = options.maxVips;
    this.maxBackends = options.maxBackends;
    this.flowCapacity = flowTableBuckets(options.maxFlows) * FLOW_WAYS;
    this.program = object.program(PROGRAMS.balancer);
    this.probeProgram = object.program(PROGRAMS.probe);
    const names = new Set(object.mapNames());
    this.maps = Object.fromEntries(
      Object.entries(MAPS).map(([key, name]) => [key, names.has(name) ? object.map(name) : undefined]),
    ) as Dataplane['maps'];
    // Pinned maps carry on: so does the VIP generation the per-CPU caches are tagged with.
    this.config = this.map('config').lookup(u32Bytes(0))!;
  }

  static open(options: DataplaneOptions = {}): Dataplane {
    return new Dataplane(...loadBalancer(options));
  }

  protected map(name: keyof typeof MAPS): BpfMap {
    const map = this.maps[name];
    if (!map) throw new Error(`map ${MAPS[name]} is not in this object`);
    return map;
  }

  /** The capture switch and reader (xlb capture); the object's .data.capture holds the settings. */
  captureTap(leaseNs?: bigint): CaptureTap {
    return new CaptureTap(this.object.map('.data.capture'), this.map('capture'), this.map('captureScratch'), leaseNs);
  }

  setConfig(config: DataplaneConfig): void {
    this.writeConfig(encodeConfig(config, this.config, { ringSize: this.ringSize, flowBuckets: this.flowCapacity / FLOW_WAYS }));
  }

  /** Ticks the connection table's clock (xlb_config.clock): seconds, as idle flows are aged. */
  setClock(seconds: number): void {
    this.writeConfig(withClock(this.config, seconds));
  }

  /** The connection table's clock as the map holds it (an adopted table's carries on). */
  clock(): number {
    return clockOf(this.config);
  }

  private writeConfig(value: Buffer): void {
    this.map('config').update(u32Bytes(0), value);
    this.config = value;
  }

  /**
   * Invalidates every CPU's VIP cache (xlb_vipcache_v3): called after each change to
   * xlb_vips_v3, never before, so no cache entry can outlive the change.
   */
  private bumpVipGeneration(): void {
    const next = Buffer.from(this.config);
    const at = configCodec.offsets.vip_generation;
    // 0 means "no generation yet" to the data plane: skip it on wrap-around.
    next.writeUInt32LE((next.readUInt32LE(at) % 0xffffffff) + 1, at);
    this.writeConfig(next);
  }

  private checkVipId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.maxVips) throw new RangeError(`VIP id ${id} outside 0..${this.maxVips - 1}`);
  }

  private checkBackendId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.maxBackends) {
      throw new RangeError(`backend id ${id} outside 0..${this.maxBackends - 1}`);
    }
  }

  /**
   * Creates or replaces a VIP record. Its address must be counted first
   * (setVipAddress), so no packet meets a VIP on an address that is not a VIP address.
   */
  setVip(key: VipMapKey, vip: VipRecord): void {
    this.checkVipId(vip.id);
    this.map('vips').update(encodeVipKey(key), vipCodec.encode(vip));
    this.bumpVipGeneration();
  }

  /** false when there was no such VIP. The ring, stats and address count stay. */
  removeVip(key: VipMapKey): boolean {
    if (!this.map('vips').delete(encodeVipKey(key))) return false;
    this.bumpVipGeneration();
    return true;
  }

  /**
   * Sets how many VIPs an address carries (xlb_vipaddr_v3): with any, the balancer
   * answers its echo requests and keeps its fragments and other protocols from the host.
   */
  setVipAddress(address: VipAddress, vips: number): void {
    if (!Number.isInteger(vips) || vips < 1) throw new RangeError(`VIP count ${vips} of an address must be a positive integer`);
    this.map('vipAddresses').update(encodeVipAddress(address), u32Bytes(vips));
  }

  /** The address stops being a VIP address; false when it was none. */
  removeVipAddress(address: VipAddress): boolean {
    return this.map('vipAddresses').delete(encodeVipAddress(address));
  }

  /** Every VIP address in the map with its count. */
  listVipAddresses(): (VipAddress & { vips: number })[] {
    const out: (VipAddress & { vips: number })[] = [];
    const addresses = this.map('vipAddresses');
    for (let key = addresses.nextKey(null); key; key = addresses.nextKey(key)) {
      const value = addresses.lookup(key);
      if (!value) continue;
      const { addr, family } = addrCodec.decode(key);
      out.push({ family: family as Family, address: addr, vips: value.readUInt32LE(0) });
    }
    return out;
  }

  /** Every VIP in the map (for adopting pinned maps). */
  listVips(): { key: VipMapKey; vip: VipRecord }[] {
    const out: { key: VipMapKey; vip: VipRecord }[] = [];
    const vips = this.map('vips');
    for (let key = vips.nextKey(null); key; key = vips.nextKey(key)) {
      const value = vips.lookup(key);
      if (!value) continue;
      const k = vipKeyCodec.decode(key);
      out.push({ key: { family: k.family as Family, address: k.addr, port: k.port, proto: k.proto }, vip: vipCodec.decode(value) });
    }
    return out;
  }

  /** Ids of backend slots in use (family set), for adopting pinned maps. */
  usedBackendIds(): number[] {
    const ids: number[] = [];
    const { values } = this.map('backends').lookupAll(); // one batch, in id order
    for (let id = 0; id < this.maxBackends; id++) if (values[id * backendCodec.size + backendCodec.offsets.family]) ids.push(id);
    return ids;
  }

  /** VIP ids that have a ring installed. */
  ringIds(): number[] {
    const ids: number[] = [];
    const rings = this.map('rings');
    for (let id = 0; id < this.maxVips; id++) if (rings.lookup(u32Bytes(id))) ids.push(id);
    return ids;
  }

  getVip(key: VipMapKey): VipRecord | null {
    const value = this.map('vips').lookup(encodeVipKey(key));
    return value ? vipCodec.decode(value) : null;
  }

  /** Writes backend records by id, all in one batch update. */
  setBackends(backends: ReadonlyMap<number, BackendRecord>): void {
    if (backends.size === 0) return;
    const keys = Buffer.alloc(backends.size * 4);
    const values = Buffer.alloc(backends.size * backendCodec.size);
    let i = 0;
    for (const [id, backend] of backends) {
      this.checkBackendId(id);
      keys.writeUInt32LE(id, i * 4);
      backendCodec
        .encode({ addr: backend.address, mac: backend.mac, family: backend.family, flags: backend.flags ?? 0, vip_id: backend.vipId })
        .copy(values, i * backendCodec.size);
      i++;
    }
    this.map('backends').updateBatch(keys, values, backends.size);
  }

  /** Frees the slot: flows pinned to it re-hash onto the VIP's ring. */
  removeBackend(id: number): void {
    this.checkBackendId(id);
    this.map('backends').update(u32Bytes(id), Buffer.alloc(backendCodec.size));
  }

  /**
   * Ring changes that packets see together: `set` writes a VIP's ring of backend ids
   * (length ringSize) into a new inner map at once, so the caller may reuse its array
   * for the next ring; `commit` swaps all of them in with one batch update, so packets
   * see a VIP's old ring or its new one, never a mix. The kernel waits for an RCU grace
   * period after a map-in-map update, so one batch for many rings costs one wait
   * instead of one each. `close` drops rings not committed.
   */
  ringBatch(): RingBatch {
    const pending = new Map<number, BpfMap>();
    const close = () => {
      for (const ring of pending.values()) ring.close();
      pending.clear();
    };
    return {
      set: (vipId, backendIds) => {
        this.checkVipId(vipId);
        if (backendIds.length !== this.ringSize) throw new RangeError(`ring has ${backendIds.length} slots, expected ${this.ringSize}`);
        const ring = createRing(backendIds);
        pending.get(vipId)?.close();
        pending.set(vipId, ring);
      },
      commit: () => {
        if (pending.size === 0) return;
        const keys = Buffer.alloc(pending.size * 4);
        const fds = Buffer.alloc(pending.size * 4);
        let i = 0;
        for (const [vipId, ring] of pending) {
          keys.writeUInt32LE(vipId, i * 4);
          fds.writeUInt32LE(ring.fd, i * 4);
          i++;
        }
        this.map('rings').updateBatch(keys, fds, pending.size);
        close();
      },
      close,
    };
  }

  /** Empties a VIP's ring: its packets are dropped as drop_no_backend. */
  removeRing(vipId: number): void {
    this.checkVipId(vipId);
    this.map('rings').delete(u32Bytes(vipId));
  }

  counters(): Record<Outcome, Traffic> {
    const counters = this.map('counters');
    return Object.fromEntries(OUTCOMES.map((name, index) => [name, sumPerCpu(trafficCodec, counters.lookup(u32Bytes(index))!)])) as Record<
      Outcome,
      Traffic
    >;
  }

  vipStats(vipId: number): VipStats {
    this.checkVipId(vipId);
    return sumPerCpu(vipStatsCodec, this.map('vipStats').lookup(u32Bytes(vipId))!);
  }

  /** Zeroes a VIP id's stats before the id is given to a new VIP. */
  resetVipStats(vipId: number): void {
    this.checkVipId(vipId);
    this.map('vipStats').update(u32Bytes(vipId), perCpuZero(vipStatsCodec.size));
  }

  backendStats(id: number): Traffic {
    this.checkBackendId(id);
    return sumPerCpu(trafficCodec, this.map('backendStats').lookup(u32Bytes(id))!);
  }

  resetBackendStats(id: number): void {
    this.checkBackendId(id);
    this.map('backendStats').update(u32Bytes(id), perCpuZero(trafficCodec.size));
  }

  /**
   * Every VIP id's stats and every backend id's traffic, each map read in one batch
   * (one syscall per map instead of one per id: 100,000 backends take ~10 ms, not ~1 s).
   */
  statsSnapshot(): { vip: (id: number) => VipStats; backend: (id: number) => Traffic } {
    return { vip: perCpuTable(this.map('vipStats'), vipStatsCodec), backend: perCpuTable(this.map('backendStats'), trafficCodec) };
  }

  /**
   * The connection table's slots and the flows it holds, in all and by backend id,
   * counted in its first `sampleBuckets` buckets and scaled to the whole table when it
   * has more (flows spread over buckets at random, so any run of buckets is a fair
   * sample): a scrape of a 1 GiB table reads 4 MiB of it, not all.
   */
  flowTableUse(sampleBuckets = FLOW_SAMPLE_BUCKETS): FlowTableUse {
    const buckets = this.flowCapacity / FLOW_WAYS;
    const sampled = Math.min(buckets, sampleBuckets);
    const table = this.map('flows').readMapped(sampled * FLOW_WAYS * flowEntryCodec.size);
    return countFlows(table, { slots: this.flowCapacity, scale: buckets / sampled, maxBackends: this.maxBackends });
  }

  /** Each of these VIPs' new flows by online CPU, evictions and unrecorded packets so far (one batch for more than a few). */
  flowCounts(vipIds: Iterable<number>): Map<number, VipFlowCounts> {
    const ids = [...vipIds];
    for (const id of ids) this.checkVipId(id);
    const value = perCpuValues(this.map('vipStats'), vipStatsCodec, ids);
    const cpus = onlineCpus();
    return new Map(ids.map((id) => [id, vipFlowCounts(value(id), cpus)]));
  }

  /** Makes xlb_probes_v1 hold exactly these probes. */
  setProbes(entries: readonly ProbeEntry[]): void {
    this.wantedProbes = entries;
    writeProbes(kernelProbeMap(this.map('probes')), entries);
  }

  listProbes(): ProbeEntry[] {
    return readProbes(kernelProbeMap(this.map('probes')));
  }

  repairProbes(): ProbeDifference[] {
    return repairProbes(kernelProbeMap(this.map('probes')), this.wantedProbes);
  }

  /** When xlb_probe last sent the probe of `key` on to its backend, or null (probes.ts). */
  probeSentAt(key: ProbeKey): bigint | null {
    return readProbeSent(this.map('probeSent'), key);
  }

  /** What the balancer's code does with `frame` on these maps, which it leaves unchanged (see dry-run.ts). */
  trace(frame: Buffer): DryRunResult {
    if (!this.dryRun) {
      const { trace, ...shared } = this.maps;
      this.dryRun = DryRun.load(
        Object.fromEntries(Object.entries(shared).flatMap(([key, map]) => (map ? [[MAPS[key as keyof typeof shared], map]] : []))),
      );
    }
    return this.dryRun.run(frame);
  }

  /** Attaches the balancer, atomically replacing whatever XDP program is there, and the probe program on tc egress. */
  attach(ifname: string, mode: XdpMode = 'native'): void {
    attachProgram(ifname, this.program, mode);
    attachProbeProgram(ifname, this.probeProgram);
  }

  close(): void {
    this.dryRun?.close();
    for (const map of Object.values(this.maps)) map?.close();
    this.program.close();
    this.probeProgram.close();
    this.object.close();
  }
}
