/**
 * Typed API over the balancer object: open (and adopt pinned maps), configure,
 * set/remove VIPs and backends, swap rings, read stats, attach. Mechanism only:
 * which backends go in a ring, and why, is the reconciler's business.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap, BpfObject, BpfProgram, ifNameToIndex, possibleCpus, xdpAttach, xdpDetach, xdpQuery, type XdpMode } from '@xlb/native';
import {
  ABI_VERSION,
  addrCodec,
  backendCodec,
  configCodec,
  RING_IDS_PER_VALUE,
  DEFAULT_FLOWS,
  DEFAULT_MAX_BACKENDS,
  DEFAULT_MAX_VIPS,
  DEFAULT_RING_SIZE,
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
import { packagePath } from '../paths.js';
import { type TableHash, tableHash } from './hash.js';
import { type FieldKind, type StructCodec, sumPerCpu, type StructValue } from './struct.js';

export const BALANCER_OBJECT = packagePath('bpf/build/xlb_balancer.bpf.o');
export const DECAP_OBJECT = packagePath('bpf/build/xlb_decap.bpf.o');

const BPF_MAP_TYPE_ARRAY = 2;
/** Rings carry the flags of the object's inner-map template (see xlb_ring in the C). */
const RING_FLAGS = 0x400; /* BPF_F_MMAPABLE */

export interface DataplaneOptions {
  objectPath?: string;
  /** Pin maps here and adopt compatible pins already there (hitless restart). */
  pinDir?: string;
  /** Maglev ring size M, a prime. */
  ringSize?: number;
  maxVips?: number;
  maxBackends?: number;
  /** Flows the connection table holds (rounded up to XLB_FLOW_WAYS times a power of two). */
  maxFlows?: number;
}

/** An address in xlb_vipaddr_v3. */
export interface VipAddress {
  family: Family;
  /** 16 bytes, network order. */
  address: Buffer;
}

export interface VipKey extends VipAddress {
  port: number;
  proto: number;
}

export interface VipRecord {
  id: number;
  flags: number;
  forwarding: number;
}

export interface BackendRecord {
  family: Family;
  address: Buffer;
  /** dsr: the backend's MAC; ipip: the next hop's, or zero for the gateway. */
  mac: Buffer;
  vipId: number;
  /** BACKEND_F_*: unhealthy backends' connection-table entries re-hash. */
  flags?: number;
}

export interface DataplaneConfig {
  hashSeed: number;
  mtu: number;
  gatewayMac: Buffer;
  sourceV4: Buffer;
  sourceV6: Buffer;
  sourceV4FlowBits: number;
  sourceV6FlowBits: number;
}

export type Traffic = StructValue<typeof trafficCodec.fields>;
export type VipStats = StructValue<typeof vipStatsCodec.fields>;

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** A zero value for a per-CPU map: one 8-byte-aligned slot per possible CPU. */
const perCpuZero = (size: number) => Buffer.alloc(Math.ceil(size / 8) * 8 * possibleCpus());

/** Values of a ring of `ringSize` slots (XLB_RING_IDS_PER_VALUE ids each). */
const ringValues = (ringSize: number) => Math.ceil(ringSize / RING_IDS_PER_VALUE);

/** Buckets flowTableUse() reads at most (4 MiB). */
const FLOW_SAMPLE_BUCKETS = 65536;

/** Buckets of the connection table for a number of flows: a power of two. */
export const flowBuckets = (maxFlows: number) => 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(maxFlows / FLOW_WAYS))));

const encodeVipKey = (key: VipKey) =>
  vipKeyCodec.encode({ addr: key.address, port: key.port, proto: key.proto, family: key.family });

const encodeVipAddress = (address: VipAddress) => addrCodec.encode({ addr: address.address, family: address.family });

/** Rings written now and swapped in together (Dataplane.ringBatch). */
export interface RingBatch {
  set(vipId: number, backendIds: Uint32Array): void;
  commit(): void;
  close(): void;
}

export class Dataplane {
  readonly ringSize: number;
  readonly maxVips: number;
  readonly maxBackends: number;
  /** Flows the connection table holds. */
  readonly flowCapacity: number;
  readonly program: BpfProgram;
  private readonly object: BpfObject;
  private readonly maps: Record<keyof typeof MAPS, BpfMap | undefined>;
  /** The configuration last written (with the current VIP generation). */
  private config: Buffer;

  private constructor(
    object: BpfObject,
    options: Required<Omit<DataplaneOptions, 'pinDir' | 'objectPath'>>,
    /** Pinned maps open() did not adopt (another ABI version or size): made afresh. */
    readonly replacedPins: string[],
  ) {
    this.object = object;
    this.ringSize = options.ringSize;
    this.maxVips = options.maxVips;
    this.maxBackends = options.maxBackends;
    this.flowCapacity = flowBuckets(options.maxFlows) * FLOW_WAYS;
    this.program = object.program(PROGRAMS.balancer);
    const names = new Set(object.mapNames());
    this.maps = Object.fromEntries(
      Object.entries(MAPS).map(([key, name]) => [key, names.has(name) ? object.map(name) : undefined]),
    ) as Dataplane['maps'];
    // Pinned maps carry on: so does the VIP generation the per-CPU caches are tagged with.
    this.config = this.map('config').lookup(u32(0))!;
  }

  static open(options: DataplaneOptions = {}): Dataplane {
    const sizes = {
      ringSize: options.ringSize ?? DEFAULT_RING_SIZE,
      maxVips: options.maxVips ?? DEFAULT_MAX_VIPS,
      maxBackends: options.maxBackends ?? DEFAULT_MAX_BACKENDS,
      maxFlows: options.maxFlows ?? DEFAULT_FLOWS,
    };
    const maxEntries = {
      [MAPS.vips]: sizes.maxVips,
      [MAPS.vipAddresses]: sizes.maxVips,
      [MAPS.rings]: sizes.maxVips,
      [MAPS.vipStats]: sizes.maxVips,
      [MAPS.backends]: sizes.maxBackends,
      [MAPS.backendStats]: sizes.maxBackends,
      [MAPS.flows]: flowBuckets(sizes.maxFlows),
      // A release with another outcome count makes its counters afresh.
      [MAPS.counters]: OUTCOMES.length,
    };
    const replacedPins = options.pinDir
      ? [
          ...removeStalePins(options.pinDir),
          ...unpinMapsOfAnotherSize(options.pinDir, maxEntries),
          ...unpinRingsOfAnotherSize(options.pinDir, ringValues(sizes.ringSize)),
        ]
      : [];
    const object = new BpfObject(options.objectPath ?? BALANCER_OBJECT, {
      pinDir: options.pinDir,
      maxEntries,
      // Every ring has exactly this many values, so the verifier inlines ring lookups.
      innerMaxEntries: { [MAPS.rings]: ringValues(sizes.ringSize) },
    });
    return new Dataplane(object, sizes, replacedPins);
  }

  private map(name: keyof typeof MAPS): BpfMap {
    const map = this.maps[name];
    if (!map) throw new Error(`map ${MAPS[name]} is not in this object`);
    return map;
  }

  setConfig(config: DataplaneConfig): void {
    const current = configCodec.decode(this.config);
    this.writeConfig(
      configCodec.encode({
        hash_seed: config.hashSeed,
        ring_size: this.ringSize,
        mtu: config.mtu,
        gateway_mac: config.gatewayMac,
        source_v4: config.sourceV4.subarray(0, 4),
        source_v6: config.sourceV6,
        source_v4_flow_bits: config.sourceV4FlowBits,
        source_v6_flow_bits: config.sourceV6FlowBits,
        vip_generation: current.vip_generation,
        flow_bucket_mask: this.flowCapacity / FLOW_WAYS - 1,
        // The table's own keys stay with the table (adopted pins keep theirs).
        flow_key: current.flow_key.some((byte) => byte !== 0) ? current.flow_key : randomBytes(configCodec.fields.flow_key.bytes),
      }),
    );
  }

  private writeConfig(value: Buffer): void {
    this.map('config').update(u32(0), value);
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
  setVip(key: VipKey, vip: VipRecord): void {
    this.checkVipId(vip.id);
    this.map('vips').update(encodeVipKey(key), vipCodec.encode(vip));
    this.bumpVipGeneration();
  }

  /** false when there was no such VIP. The ring, stats and address count stay. */
  removeVip(key: VipKey): boolean {
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
    this.map('vipAddresses').update(encodeVipAddress(address), u32(vips));
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
  listVips(): { key: VipKey; vip: VipRecord }[] {
    const out: { key: VipKey; vip: VipRecord }[] = [];
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
    for (let id = 0; id < this.maxVips; id++) if (rings.lookup(u32(id))) ids.push(id);
    return ids;
  }

  getVip(key: VipKey): VipRecord | null {
    const value = this.map('vips').lookup(encodeVipKey(key));
    return value ? vipCodec.decode(value) : null;
  }

  setBackend(id: number, backend: BackendRecord): void {
    this.setBackends(new Map([[id, backend]]));
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
    this.map('backends').update(u32(id), Buffer.alloc(backendCodec.size));
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
        const ring = BpfMap.create(BPF_MAP_TYPE_ARRAY, 4, 4 * RING_IDS_PER_VALUE, ringValues(this.ringSize), 'xlb_ring', RING_FLAGS);
        try {
          // The ids fill the values back to back (no padding): one copy as they are.
          ring.writeMapped(Buffer.from(backendIds.buffer, backendIds.byteOffset, backendIds.byteLength));
        } catch (error) {
          ring.close();
          throw error;
        }
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

  /** Installs one VIP's ring of backend ids (a batch of one, see ringBatch). */
  setRing(vipId: number, backendIds: Uint32Array): void {
    const batch = this.ringBatch();
    try {
      batch.set(vipId, backendIds);
      batch.commit();
    } finally {
      batch.close();
    }
  }

  /** The VIP's ring as backend ids, or null when it has none. */
  getRing(vipId: number): Uint32Array | null {
    const id = this.map('rings').lookup(u32(vipId));
    if (!id) return null;
    const ring = BpfMap.fromId(id.readUInt32LE(0));
    try {
      const slots = new Uint32Array(this.ringSize);
      // Host-order ids back to back: one copy into the typed array's bytes.
      Buffer.from(slots.buffer).set(ring.readMapped().subarray(0, slots.byteLength));
      return slots;
    } finally {
      ring.close();
    }
  }

  /** Empties a VIP's ring: its packets are dropped as drop_no_backend. */
  removeRing(vipId: number): void {
    this.checkVipId(vipId);
    this.map('rings').delete(u32(vipId));
  }

  counters(): Record<Outcome, Traffic> {
    const counters = this.map('counters');
    return Object.fromEntries(
      OUTCOMES.map((name, index) => [name, sumPerCpu(trafficCodec, counters.lookup(u32(index))!)]),
    ) as Record<Outcome, Traffic>;
  }

  vipStats(vipId: number): VipStats {
    this.checkVipId(vipId);
    return sumPerCpu(vipStatsCodec, this.map('vipStats').lookup(u32(vipId))!);
  }

  /** Zeroes a VIP id's stats before the id is given to a new VIP. */
  resetVipStats(vipId: number): void {
    this.checkVipId(vipId);
    this.map('vipStats').update(u32(vipId), perCpuZero(vipStatsCodec.size));
  }

  backendStats(id: number): Traffic {
    this.checkBackendId(id);
    return sumPerCpu(trafficCodec, this.map('backendStats').lookup(u32(id))!);
  }

  resetBackendStats(id: number): void {
    this.checkBackendId(id);
    this.map('backendStats').update(u32(id), perCpuZero(trafficCodec.size));
  }

  /**
   * Every VIP id's stats and every backend id's traffic, each map read in one batch
   * (one syscall per map instead of one per id: 100,000 backends take ~10 ms, not ~1 s).
   */
  statsSnapshot(): { vip: (id: number) => VipStats; backend: (id: number) => Traffic } {
    return { vip: perCpuTable(this.map('vipStats'), vipStatsCodec), backend: perCpuTable(this.map('backendStats'), trafficCodec) };
  }

  /**
   * The connection-table bucket a flow (an encoded xlb_flow_key) belongs to, and its
   * neighbour, which takes the bucket's new flows while it is full (null in a
   * one-bucket table); as the balancer's flow_bucket().
   */
  flowBuckets(flowKey: Buffer): { bucket: number; neighbour: number | null; hash: TableHash } {
    const { flow_bucket_mask: mask, flow_key: key } = configCodec.decode(this.config);
    const hash = tableHash(flowKey, key);
    const bucket = (hash.bucket & mask) >>> 0;
    return { bucket, neighbour: mask ? (bucket ^ 1) >>> 0 : null, hash };
  }

  /** The backend id the connection table holds for a flow (an encoded xlb_flow_key), or null. */
  lookupFlow(flowKey: Buffer): number | null {
    const { bucket, neighbour, hash } = this.flowBuckets(flowKey);
    for (const index of neighbour === null ? [bucket] : [bucket, neighbour]) {
      const ways = this.map('flows').lookup(u32(index))!;
      for (let way = 0; way < FLOW_WAYS; way++) {
        const entry = flowEntryCodec.decode(ways, way * flowEntryCodec.size);
        if (entry.tag === hash.tag && entry.check === (hash.check ^ entry.backend_id) >>> 0) return entry.backend_id;
      }
    }
    return null;
  }

  /** Flows in the connection table (one copy of the whole table through mmap). */
  countFlows(): number {
    return this.flowTableUse(Infinity).flows;
  }

  /**
   * The connection table's slots and the flows it holds, counted in its first
   * `sampleBuckets` buckets and scaled to the whole table when it has more (flows
   * spread over buckets at random, so any run of buckets is a fair sample): a scrape
   * of a 1 GiB table reads 4 MiB of it, not all.
   */
  flowTableUse(sampleBuckets = FLOW_SAMPLE_BUCKETS): { slots: number; flows: number } {
    const buckets = this.flowCapacity / FLOW_WAYS;
    const sampled = Math.min(buckets, sampleBuckets);
    const table = this.map('flows').readMapped(sampled * FLOW_WAYS * flowEntryCodec.size);
    let flows = 0;
    // An entry in use has its tag or check set (flow_way_empty() in the balancer).
    for (let entry = 0; entry < table.length; entry += flowEntryCodec.size) if (table.readUInt32LE(entry + flowEntryCodec.offsets.tag) || table.readUInt32LE(entry + flowEntryCodec.offsets.check)) flows++;
    return { slots: this.flowCapacity, flows: Math.round((flows * buckets) / sampled) };
  }

  /** Attaches the balancer, atomically replacing whatever XDP program is there. */
  attach(ifname: string, mode: XdpMode = 'native'): void {
    attachProgram(ifname, this.program, mode);
  }

  close(): void {
    for (const map of Object.values(this.maps)) map?.close();
    this.program.close();
    this.object.close();
  }
}

/**
 * Unpins maps of other ABI versions (`xlb_*_vN`) from a pin directory: a release that
 * changed a layout builds fresh maps under new names, and the old names would stay
 * pinned until `xlb down`. A program still running keeps its own references, so this
 * never pulls a map from under it.
 */
export function removeStalePins(dir: string): string[] {
  const stale = existsSync(dir) ? readdirSync(dir).filter((name) => /^xlb_[a-z0-9_]+_v\d+$/.test(name) && !name.endsWith(`_v${ABI_VERSION}`)) : [];
  for (const name of stale) rmSync(join(dir, name), { force: true });
  return stale;
}

/**
 * The pinned map of rings only takes rings like its inner-map template, of the size
 * it was made for, so a daemon started with another ring size needs a fresh one. A
 * ring already in it tells the size; with none there is nothing to keep. The running
 * program keeps its own rings until the new one, applied, replaces it.
 */
function unpinRingsOfAnotherSize(dir: string, values: number): string[] {
  const path = join(dir, MAPS.rings);
  if (!existsSync(path)) return [];
  let keep = false;
  const rings = BpfMap.fromPin(path);
  try {
    for (let vipId = 0; vipId < rings.info.maxEntries; vipId++) {
      const id = rings.lookup(u32(vipId));
      if (!id) continue;
      const ring = BpfMap.fromId(id.readUInt32LE(0));
      keep = ring.info.maxEntries === values && ring.info.flags === RING_FLAGS;
      ring.close();
      break;
    }
  } finally {
    rings.close();
  }
  if (keep) return [];
  rmSync(path, { force: true });
  return [MAPS.rings];
}

/**
 * libbpf adopts a pinned map only if it matches the definition, so a daemon started
 * with another --max-vips, --max-backends or --max-flows would fail to load ("Invalid
 * argument"). Those maps are unpinned instead and made afresh at the new size: the
 * daemon writes its whole state into them before the program that uses them replaces
 * the running one, which keeps its old maps until then. A new connection table starts
 * empty (flows re-hash once); counters in resized stats maps start from zero.
 */
function unpinMapsOfAnotherSize(dir: string, maxEntries: Record<string, number>): string[] {
  const replaced: string[] = [];
  for (const [name, entries] of Object.entries(maxEntries)) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    const map = BpfMap.fromPin(path);
    const size = map.info.maxEntries;
    map.close();
    if (size === entries) continue;
    rmSync(path, { force: true });
    replaced.push(name);
  }
  return replaced;
}

/** A per-CPU array read whole, as a function from index to its value summed over CPUs. */
function perCpuTable<F extends Record<string, FieldKind>>(map: BpfMap, codec: StructCodec<F>): (index: number) => StructValue<F> {
  const { values } = map.lookupAll();
  const bytes = Math.ceil(codec.size / 8) * 8 * possibleCpus();
  return (index) => sumPerCpu(codec, values.subarray(index * bytes, (index + 1) * bytes));
}

/** Attaches a program to an interface, replacing the current one in one step. */
export function attachProgram(ifname: string, program: BpfProgram, mode: XdpMode): void {
  const ifindex = ifNameToIndex(ifname);
  const currentId = xdpQuery(ifindex, mode);
  if (!currentId) {
    xdpAttach(ifindex, program, { mode });
    return;
  }
  const current = BpfProgram.fromId(currentId);
  try {
    xdpAttach(ifindex, program, { mode, replace: current });
  } finally {
    current.close();
  }
}

/** The name of the XDP program attached to an interface, or null. */
export function attachedProgramName(ifname: string, mode: XdpMode): string | null {
  const id = xdpQuery(ifNameToIndex(ifname), mode);
  if (!id) return null;
  const program = BpfProgram.fromId(id);
  try {
    return program.info.name;
  } finally {
    program.close();
  }
}

/**
 * Detaches `expected` from an interface; refuses, naming it, when another program is
 * attached. Returns false when nothing was.
 */
export function detachOwnProgram(ifname: string, mode: XdpMode, expected: string): boolean {
  const current = attachedProgramName(ifname, mode);
  if (current === null) return false;
  if (current !== expected) throw new Error(`${ifname} runs XDP program ${current}, not ${expected}; leaving it`);
  detachProgram(ifname, mode);
  return true;
}

export function detachProgram(ifname: string, mode: XdpMode): void {
  xdpDetach(ifNameToIndex(ifname), mode);
}
