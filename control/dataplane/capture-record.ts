/**
 * What crosses the capture's kernel boundary, without the native addon: the settings
 * the balancer's .data.capture holds and the records xlb_capture_v1 carries (capture.ts reads them).
 */
import { captureRecordCodec } from './codec.js';

/** What the kernel copies: one VIP (by id) or any, a backend address or any, outcomes as a bit mask, bytes per frame. */
export interface CaptureSettings {
  vipId: number | null;
  backend: { family: 4 | 6; address: Buffer } | null;
  outcomes: number;
  snaplen: number;
}

export type CaptureRecord = Omit<ReturnType<typeof captureRecordCodec.decode>, 'time_ns'> & { timeNs: bigint; frame: Buffer };

/** What pairs a raw record's copies, read without decoding the rest: its direction, CPU and sequence. */
export function captureRecordKey(raw: Buffer): { direction: number; cpu: number; sequence: number } {
  const { offsets } = captureRecordCodec;
  return { direction: raw.readUInt8(offsets.direction), cpu: raw.readUInt32LE(offsets.cpu), sequence: raw.readUInt32LE(offsets.sequence) };
}

/** A record as xlb_capture_v1 carries it: struct xlb_capture_record, then the frame's bytes. */
export function decodeCaptureRecord(raw: Buffer): CaptureRecord {
  const { time_ns: _, ...record } = captureRecordCodec.decode(raw.subarray(0, captureRecordCodec.size));
  const frame = Buffer.from(raw.subarray(captureRecordCodec.size, captureRecordCodec.size + record.captured));
  // Read as a bigint: nanoseconds since boot outgrow a double's exact integers.
  return { ...record, timeNs: raw.readBigUInt64LE(captureRecordCodec.offsets.time_ns), frame };
}
