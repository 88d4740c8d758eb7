/**
 * What the control plane above dataplane/ asks of the data plane: the controller and
 * the reconciler depend on this, not on the kernel-backed Dataplane, so they run
 * against an in-memory model in unit tests (test/lib/dataplane-model.ts).
 */
import type { FlowState, Outcome } from './codec.js';
import type { VipFlowCounts } from './flow-counts.js';
import type { ProbeDifference, ProbeEntry } from './probes.js';
import type { BackendRecord, Traffic, VipAddress, VipMapKey, VipRecord, VipStats } from './records.js';

/** Rings written now and swapped in together (DataplanePort.ringBatch). */
export interface RingBatch {
  set(vipId: number, backendIds: Uint32Array): void;
  commit(): void;
  close(): void;
}

/** The connection table's slots and the flows it holds, in all and by the backend id they are pinned to. */
export interface FlowTableUse {
  slots: number;
  flows: number;
  /** The flows by state (enum xlb_flow_state): only established ones are kept from new flows. */
  states: Record<FlowState, number>;
  backendFlows: (backendId: number) => number;
}

export interface DataplanePort {
  /** Maglev ring size M: every ring has exactly this many slots. */
  readonly ringSize: number;

  setVip(key: VipMapKey, vip: VipRecord): void;
  /** false when there was no such VIP. */
  removeVip(key: VipMapKey): boolean;
  getVip(key: VipMapKey): VipRecord | null;
  listVips(): { key: VipMapKey; vip: VipRecord }[];

  /** How many VIPs an address carries (a positive integer). */
  setVipAddress(address: VipAddress, vips: number): void;
  /** false when the address was no VIP address. */
  removeVipAddress(address: VipAddress): boolean;
  listVipAddresses(): (VipAddress & { vips: number })[];

  setBackends(backends: ReadonlyMap<number, BackendRecord>): void;
  removeBackend(id: number): void;
  usedBackendIds(): number[];

  ringBatch(): RingBatch;
  removeRing(vipId: number): void;
  ringIds(): number[];

  resetVipStats(vipId: number): void;
  resetBackendStats(id: number): void;
  counters(): Record<Outcome, Traffic>;
  /** Every VIP id's stats and every backend id's traffic, read at once. */
  statsSnapshot(): { vip: (id: number) => VipStats; backend: (id: number) => Traffic };
  flowTableUse(): FlowTableUse;
  /** Ticks the connection table's clock (seconds; idle established flows lose their protection by it). */
  setClock(seconds: number): void;
  /** The connection table's clock now. */
  clock(): number;
  /** Each of these VIPs' new flows by online CPU, evictions and unrecorded packets so far, read at once. */
  flowCounts(vipIds: Iterable<number>): Map<number, VipFlowCounts>;

  /** Makes the probe entries exactly these (dataplane/probes.ts). */
  setProbes(entries: readonly ProbeEntry[]): void;
  listProbes(): ProbeEntry[];
  /** Rewrites the probe entries that differ from the last setProbes (changed from outside); returns the differences. */
  repairProbes(): ProbeDifference[];
}
