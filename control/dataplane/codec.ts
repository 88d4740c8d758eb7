/**
 * TypeScript mirror of bpf/include/xlb.h: constants, map names and struct codecs.
 * test/btf-layout.test.ts checks every codec against the object's BTF.
 */
import { packagePath } from '../paths.js';
import { defineStruct } from './struct.js';

export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export type Family = typeof FAMILY_V4 | typeof FAMILY_V6;

export const FORWARD_DSR = 1;
export const FORWARD_IPIP = 2;

export const VIP_F_SOURCE_AFFINITY = 1 << 0;
export const VIP_F_NO_CONNTRACK = 1 << 1;

export const BACKEND_F_UNHEALTHY = 1 << 0;

export const DEFAULT_RING_SIZE = 65537;
export const DEFAULT_MAX_VIPS = 1024;
export const DEFAULT_MAX_BACKENDS = 65536;
export const DEFAULT_FLOWS = 65536;
export const VIP_CACHE_BITS = 8;
export const FLOW_WAYS = 4;
export const RING_IDS_PER_VALUE = 2;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
/** A VIP's protocol as the maps key it, and back. */
export const protocolNumber = (protocol: 'tcp' | 'udp'): number => (protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP);
export const protocolName = (proto: number): 'tcp' | 'udp' => (proto === IPPROTO_TCP ? 'tcp' : 'udp');

/**
 * Map names as in the objects: xlb_<map>_v<N>, N that map's own layout version (see
 * xlb.h). A daemon adopts a pin only under the exact name; test/btf-layout.test.ts
 * checks these against the objects and each map's layout against its version.
 */
export const MAPS = {
  vips: 'xlb_vips_v3',
  vipAddresses: 'xlb_vipaddr_v3',
  rings: 'xlb_rings_v3',
  backends: 'xlb_backends_v3',
  flows: 'xlb_flows_v5',
  config: 'xlb_config_v5',
  counters: 'xlb_counters_v4',
  vipStats: 'xlb_vipstat_v4',
  vipCache: 'xlb_vipcache_v3',
  backendStats: 'xlb_bestat_v3',
  trace: 'xlb_trace_v2',
  decapAddresses: 'xlb_decap_v3',
  decapCounters: 'xlb_dcounter_v3',
  probes: 'xlb_probes_v1',
  probeSent: 'xlb_probe_sent_v1',
  capture: 'xlb_capture_v1',
  captureScratch: 'xlb_capscratch_v1',
} as const;

export const PROGRAMS = { balancer: 'xlb_balancer', decap: 'xlb_decap', trace: 'xlb_trace', probe: 'xlb_probe' } as const;

/** A probe's local port range (XLB_PROBE_PORT_MIN..MAX): the tc program xlb_probe forwards these. */
export const PROBE_PORT_MIN = 61440;
export const PROBE_PORT_MAX = 65535;

/** The compiled objects holding those programs and their maps. */
export const BALANCER_OBJECT = packagePath('bpf/build/xlb_balancer.bpf.o');
export const DECAP_OBJECT = packagePath('bpf/build/xlb_decap.bpf.o');
/** The balancer's dry run (xlb trace): the same source, its xlb_trace entry. */
export const TRACE_OBJECT = packagePath('bpf/build/xlb_trace.bpf.o');

export const addrCodec = defineStruct('xlb_addr', {
  addr: { bytes: 16 },
  family: 'u8',
  pad: { bytes: 3 },
});

export const vipKeyCodec = defineStruct('xlb_vip_key', {
  addr: { bytes: 16 },
  port: 'be16',
  proto: 'u8',
  family: 'u8',
});

export const vipCodec = defineStruct('xlb_vip', {
  id: 'u32',
  flags: 'u32',
  forwarding: 'u8',
  pad: { bytes: 3 },
});

export const backendCodec = defineStruct('xlb_backend', {
  addr: { bytes: 16 },
  mac: { bytes: 6 },
  family: 'u8',
  flags: 'u8',
  vip_id: 'u32',
});

export const probeKeyCodec = defineStruct('xlb_probe_key', {
  addr: { bytes: 16 },
  port: 'be16',
  sport: 'be16',
  proto: 'u8',
  family: 'u8',
  pad: { bytes: 2 },
});

export const probeCodec = defineStruct('xlb_probe', {
  backend_id: 'u32',
  forwarding: 'u8',
  pad: { bytes: 3 },
});

/** When xlb_probe last sent a probe on (bpf_ktime_get_ns: CLOCK_MONOTONIC), by its xlb_probe_key. */
export const probeSentCodec = defineStruct('xlb_probe_sent', {
  sent_ns: 'u64',
});

/**
 * What the hashes read (hash.ts). No map holds it (the connection table keeps
 * fingerprints), so the BTF test reads it from bpf/tests/btf_types.bpf.c.
 */
export const flowKeyCodec = defineStruct('xlb_flow_key', {
  src: { bytes: 16 },
  dst: { bytes: 16 },
  sport: 'be16',
  dport: 'be16',
  proto: 'u8',
  family: 'u8',
  pad: { bytes: 2 },
});

/** enum xlb_flow_state (xlb.h) of a way in use: FLOW_STATES[state - 1]. */
export const FLOW_STATES = ['new', 'established', 'closing'] as const;
export type FlowState = (typeof FLOW_STATES)[number];
/** An entry's state by its byte (a torn entry's 0 counts as new). */
export const flowState = (byte: number): FlowState => FLOW_STATES[Math.max((byte & 3) - 1, 0)]!;
/** The table's clock wraps at 24 bits (xlb_config.clock). */
export const FLOW_CLOCK_MASK = 0xffffff;
/** enum xlb_flow_state's XLB_FLOW_ESTABLISHED. */
export const FLOW_ESTABLISHED = FLOW_STATES.indexOf('established') + 1;
export const DEFAULT_FLOW_IDLE_TIMEOUT = 900;

export const flowEntryCodec = defineStruct('xlb_flow_entry', {
  tag: 'u32',
  backend_id: 'u32',
  check: 'u32',
  mark: 'u32',
});

/** An entry's mark: its state (enum xlb_flow_state) and the table's clock when its protection ends. */
export const flowMark = (mark: number) => ({ state: mark & 0xff, expires: mark >>> 8 });

export const flowBucketCodec = defineStruct('xlb_flow_bucket', {
  way: { bytes: flowEntryCodec.size * FLOW_WAYS },
});

export const configCodec = defineStruct('xlb_config', {
  hash_seed: 'u32',
  ring_size: 'u32',
  mtu: 'u16',
  gateway_mac: { bytes: 6 },
  source_v4: { bytes: 4 },
  source_v6: { bytes: 16 },
  source_v4_flow_bits: 'u8',
  source_v6_flow_bits: 'u8',
  pad: { bytes: 2 },
  vip_generation: 'u32',
  flow_bucket_mask: 'u32',
  flow_key: { bytes: 32 },
  clock: 'u32',
  flow_idle_timeout: 'u32',
  established_mark: 'u32',
});

const vipCacheEntryCodec = defineStruct('xlb_vip_cache_entry', {
  key: { bytes: vipKeyCodec.size },
  vip: { bytes: vipCodec.size },
  generation: 'u32',
  found: 'u32',
});

export const trafficCodec = defineStruct('xlb_traffic', {
  packets: 'u64',
  bytes: 'u64',
});

export const vipStatsCodec = defineStruct('xlb_vip_stats', {
  packets: 'u64',
  bytes: 'u64',
  flow_hits: 'u64',
  flow_misses: 'u64',
  flow_evicted_new: 'u64',
  flow_evicted_established: 'u64',
  flow_evicted_closing: 'u64',
  flow_unrecorded: 'u64',
});

/** struct xlb_trace.flags: what a dry run (xlb_trace) went through. */
export const TRACE_F = { vip: 1 << 0, table: 1 << 1, tableFound: 1 << 2, tableHit: 1 << 3, ring: 1 << 4, done: 1 << 5 } as const;

export const traceCodec = defineStruct('xlb_trace', {
  flags: 'u32',
  outcome: 'u32',
  vip: { bytes: vipCodec.size },
  table_backend_id: 'u32',
  table_state: 'u32',
  hash: 'u32',
  ring_slot: 'u32',
  ring_backend_id: 'u32',
});

/** Capture (bpf/balancer/capture.h): the balancer's .data.capture settings and each copy's record. */
export const CAPTURE_NONE = 0xffffffff;
export const CAPTURE_MAX_BYTES = 4096;
export const CAPTURE_RECEIVED = 1;
export const CAPTURE_SENT = 2;

export const captureSettingsCodec = defineStruct('xlb_capture_settings', {
  until_ns: 'u64',
  vip_id: 'u32',
  outcomes: 'u32',
  snaplen: 'u32',
  backend_addr: { bytes: 16 },
  backend_family: 'u8',
  pad: { bytes: 3 },
});

export const captureRecordCodec = defineStruct('xlb_capture_record', {
  time_ns: 'u64',
  sequence: 'u32',
  cpu: 'u32',
  vip_id: 'u32',
  backend_id: 'u32',
  length: 'u32',
  captured: 'u32',
  outcome: 'u8',
  direction: 'u8',
  pad: { bytes: 6 },
});

export const captureScratchCodec = defineStruct('xlb_capture_scratch', {
  record: { bytes: captureRecordCodec.size },
  frame: { bytes: CAPTURE_MAX_BYTES },
  lost: 'u64',
});

/** enum xlb_outcome, in order. */
export const OUTCOMES = [
  'pass_non_ip',
  'pass_not_vip',
  'pass_fragment',
  'drop_malformed_eth',
  'drop_malformed_ip',
  'drop_malformed_l4',
  'drop_malformed_icmp_inner',
  'drop_fragment',
  'drop_vip_proto',
  'drop_not_configured',
  'drop_no_backend',
  'drop_no_route',
  'drop_too_big',
  'drop_adjust_failed',
  'drop_unknown_forwarding',
  'drop_probe_loop',
  'tx_dsr',
  'tx_ipip',
  'tx_icmp_echo_reply',
  'tx_icmp_too_big',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** enum xlb_decap_outcome, in order. */
export const DECAP_OUTCOMES = ['pass_not_encap', 'pass_decapsulated', 'drop_malformed', 'drop_adjust_failed'] as const;
export type DecapOutcome = (typeof DECAP_OUTCOMES)[number];

/** Every codec, by its C struct name (for the BTF check). */
export const STRUCTS = [
  addrCodec,
  vipKeyCodec,
  vipCodec,
  backendCodec,
  flowEntryCodec,
  flowBucketCodec,
  configCodec,
  vipCacheEntryCodec,
  trafficCodec,
  vipStatsCodec,
  probeKeyCodec,
  probeCodec,
  probeSentCodec,
  traceCodec,
  captureSettingsCodec,
  captureRecordCodec,
  captureScratchCodec,
];
