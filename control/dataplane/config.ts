/** The balancer's configuration record (xlb_config) from the control plane's terms. */
import { randomBytes } from 'node:crypto';
import { configCodec, FLOW_CLOCK_MASK, FLOW_ESTABLISHED } from './codec.js';
import type { DataplaneConfig } from './records.js';

/**
 * The record to write for `config` over the `current` one: the VIP generation, the
 * connection table's clock and key stay (adopted pins keep theirs), a zero key is made
 * afresh.
 */
export function encodeConfig(config: DataplaneConfig, current: Buffer, sizes: { ringSize: number; flowBuckets: number }): Buffer {
  const held = configCodec.decode(current);
  return configCodec.encode({
    hash_seed: config.hashSeed,
    ring_size: sizes.ringSize,
    mtu: config.mtu,
    gateway_mac: config.gatewayMac,
    source_v4: config.sourceV4.subarray(0, 4),
    source_v6: config.sourceV6,
    source_v4_flow_bits: config.sourceV4FlowBits,
    source_v6_flow_bits: config.sourceV6FlowBits,
    vip_generation: held.vip_generation,
    flow_bucket_mask: sizes.flowBuckets - 1,
    flow_key: held.flow_key.some((byte) => byte !== 0) ? held.flow_key : randomBytes(configCodec.fields.flow_key.bytes),
    clock: held.clock,
    flow_idle_timeout: config.flowIdleTimeout,
    established_mark: establishedMark(held.clock, config.flowIdleTimeout),
  });
}

/** struct xlb_config.established_mark: what a hit on an established flow leaves in its entry. */
const establishedMark = (clock: number, timeout: number) => ((((clock + timeout) & FLOW_CLOCK_MASK) << 8) | FLOW_ESTABLISHED) >>> 0;

/** The record with the connection table's clock set to `seconds` (wrapping at 24 bits). */
export function withClock(current: Buffer, seconds: number): Buffer {
  const next = Buffer.from(current);
  const clock = (seconds & FLOW_CLOCK_MASK) >>> 0;
  next.writeUInt32LE(clock, configCodec.offsets.clock);
  next.writeUInt32LE(
    establishedMark(clock, next.readUInt32LE(configCodec.offsets.flow_idle_timeout)),
    configCodec.offsets.established_mark,
  );
  return next;
}

/** The connection table's clock in a record. */
export const clockOf = (record: Buffer) => record.readUInt32LE(configCodec.offsets.clock);
