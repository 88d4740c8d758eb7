/**
 * The Dataplane with what only tests and the bench use: one-off writes, and reads of
 * rings and the connection table the daemon never needs.
 */
import {
  backendCodec,
  configCodec,
  DEFAULT_FLOW_IDLE_TIMEOUT,
  type Family,
  FLOW_WAYS,
  flowEntryCodec,
  type FlowState,
  flowMark,
  flowState,
} from './codec.js';
import { Dataplane } from './dataplane.js';
import { type TableHash, tableHash } from './hash.js';
import { type DataplaneOptions, loadBalancer } from './load.js';
import type { BackendRecord, DataplaneConfig } from './records.js';
import { readRing } from './rings.js';
import { u32Bytes } from './struct.js';

/** A config for tests and the bench: seed 1, MTU 1500, no gateway MAC or tunnel sources, but for `overrides`. */
export const testConfig = (overrides: Partial<DataplaneConfig> = {}): DataplaneConfig => ({
  hashSeed: 1,
  mtu: 1500,
  gatewayMac: Buffer.alloc(6),
  sourceV4: Buffer.alloc(4),
  sourceV6: Buffer.alloc(16),
  sourceV4FlowBits: 0,
  sourceV6FlowBits: 0,
  flowIdleTimeout: DEFAULT_FLOW_IDLE_TIMEOUT,
  ...overrides,
});

export class TestDataplane extends Dataplane {
  static override open(options: DataplaneOptions = {}): TestDataplane {
    return new TestDataplane(...loadBalancer(options));
  }

  setBackend(id: number, backend: BackendRecord): void {
    this.setBackends(new Map([[id, backend]]));
  }

  /** The record in a backend slot, or null when the slot is free. */
  getBackend(id: number): BackendRecord | null {
    const value = this.map('backends').lookup(u32Bytes(id));
    const b = value && backendCodec.decode(value);
    return b?.family ? { family: b.family as Family, address: b.addr, mac: b.mac, vipId: b.vip_id, flags: b.flags } : null;
  }

  /** The configuration as the map holds it, decoded. */
  readConfig() {
    return configCodec.decode(this.map('config').lookup(u32Bytes(0))!);
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
    const id = this.map('rings').lookup(u32Bytes(vipId));
    return id ? readRing(id.readUInt32LE(0), this.ringSize) : null;
  }

  /**
   * The connection-table bucket a flow (an encoded xlb_flow_key) belongs to, and its
   * neighbour, which takes the bucket's new flows while it is full (null in a
   * one-bucket table); as the balancer's flow_bucket().
   */
  bucketsOfFlow(flowKey: Buffer): { bucket: number; neighbour: number | null; hash: TableHash } {
    const { flow_bucket_mask: mask, flow_key: key } = configCodec.decode(this.config);
    const hash = tableHash(flowKey, key);
    const bucket = (hash.bucket & mask) >>> 0;
    return { bucket, neighbour: mask ? (bucket ^ 1) >>> 0 : null, hash };
  }

  /** The backend id the connection table holds for a flow (an encoded xlb_flow_key), or null. */
  lookupFlow(flowKey: Buffer): number | null {
    return this.findFlow(flowKey)?.backendId ?? null;
  }

  /** A flow's entry (an encoded xlb_flow_key): its backend id, state and when its protection ends (the clock's), or null. */
  findFlow(flowKey: Buffer): { backendId: number; state: FlowState; expires: number } | null {
    const { bucket, neighbour, hash } = this.bucketsOfFlow(flowKey);
    for (const index of neighbour === null ? [bucket] : [bucket, neighbour]) {
      const ways = this.map('flows').lookup(u32Bytes(index))!;
      for (let way = 0; way < FLOW_WAYS; way++) {
        const entry = flowEntryCodec.decode(ways, way * flowEntryCodec.size);
        if (entry.tag === hash.tag && entry.check === (hash.check ^ entry.backend_id) >>> 0)
          return { backendId: entry.backend_id, state: flowState(entry.mark), expires: flowMark(entry.mark).expires };
      }
    }
    return null;
  }

  /** Flows in the connection table (one copy of the whole table through mmap). */
  countFlows(): number {
    return this.flowTableUse(Infinity).flows;
  }
}
