/** The records the Dataplane reads and writes, in the control plane's terms. */
import type { Family, trafficCodec, vipStatsCodec } from './codec.js';
import type { StructValue } from './struct.js';

/** An address in xlb_vipaddr_v3. */
export interface VipAddress {
  family: Family;
  /** 16 bytes, network order. */
  address: Buffer;
}

/** A key of the VIP map, in the bytes the balancer looks packets up by (state/schema.ts's VipKey is the stored text form). */
export interface VipMapKey extends VipAddress {
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
  flags?: number | undefined;
}

export interface DataplaneConfig {
  hashSeed: number;
  mtu: number;
  gatewayMac: Buffer;
  sourceV4: Buffer;
  sourceV6: Buffer;
  sourceV4FlowBits: number;
  sourceV6FlowBits: number;
  /** Seconds idle after which an established flow's table entry may be taken by a new flow. */
  flowIdleTimeout: number;
}

export type Traffic = StructValue<typeof trafficCodec.fields>;
export type VipStats = StructValue<typeof vipStatsCodec.fields>;
