/**
 * One capture, as the daemon runs it: switches the kernel's copying on, polls the
 * perf buffers on a timer (renewing the kernel's lease each time, so that copying stops
 * by itself if this process dies), writes each copy as a pcapng packet with its comment
 * to `output`, and on stop switches the kernel off, drains what is left and writes the
 * statistics block. A reader that falls behind costs copies (counted), not memory: the
 * output holds CAPTURE_OUTPUT_LIMIT bytes at most, and a copy it cannot take is not decoded.
 */
import { PassThrough } from 'node:stream';
import type { PerfReader } from '@xlb/native';
import { type CaptureRecord, captureRecordKey, type CaptureSettings, decodeCaptureRecord } from '../dataplane/capture-record.js';
import { CAPTURE_NONE, CAPTURE_RECEIVED, OUTCOMES } from '../dataplane/codec.js';
import { pcapngHeader, pcapngPacket, pcapngStatistics } from './pcapng.js';

/** The kernel's side: what CaptureTap does. */
export interface CaptureSwitch {
  start(settings: CaptureSettings): Pick<PerfReader, 'consume' | 'close'>;
  /** Extends the kernel's lease on copying: without it, copying stops by itself. */
  renew(): void;
  stop(): void;
  lostCopies(): number;
}

/** Names for the ids a record carries, for its comment (undefined: shown as the id). */
export interface CaptureNames {
  vip(id: number): string | undefined;
  backend(id: number): string | undefined;
}

export interface CaptureOptions {
  settings: CaptureSettings;
  /** Packets to capture (each with its sent copy); undefined: until stopped. */
  count: number | undefined;
  interfaceName: string;
  names: CaptureNames;
}

export interface CaptureSummary {
  /** Packets written (their received copies). */
  packets: number;
  /** Copies the kernel lost (its buffer full). */
  lostInKernel: number;
  /** Packets dropped because the client read too slowly. */
  droppedByDaemon: number;
  reason: string;
}

const POLL_MS = 20;
/** Bytes the output may hold unread (both its sides) before packets are dropped. */
export const CAPTURE_OUTPUT_LIMIT = 4 * 1024 * 1024;
/** What the output passes on at a time: the rest of the limit waits on its writable side. */
const OUTPUT_CHUNK = 64 * 1024;

const directionName = (record: CaptureRecord) => (record.direction === CAPTURE_RECEIVED ? 'received' : 'sent');

export class CaptureSession {
  readonly output = new PassThrough({ highWaterMark: OUTPUT_CHUNK });
  readonly started = new Date();
  private readonly reader: Pick<PerfReader, 'consume' | 'close'>;
  private readonly timer: NodeJS.Timeout;
  /** Monotonic nanoseconds (bpf_ktime_get_ns, process.hrtime) to the epoch's. */
  private readonly epochOffset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  private readonly startNs: bigint;
  /** Per CPU, the sequence of the last received copy written: its sent copy follows it. */
  private readonly written = new Map<number, number>();
  private packets = 0;
  private droppedByDaemon = 0;
  private stopped = false;
  private result: CaptureSummary | null = null;

  constructor(
    private readonly tap: CaptureSwitch,
    private readonly options: CaptureOptions,
  ) {
    this.startNs = process.hrtime.bigint() + this.epochOffset;
    this.write(pcapngHeader({ snaplen: options.settings.snaplen, interfaceName: options.interfaceName }));
    this.reader = tap.start(options.settings);
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  get summary(): CaptureSummary | null {
    return this.result;
  }

  private get full(): boolean {
    return this.options.count !== undefined && this.packets >= this.options.count;
  }

  /** Bytes the output holds that its client has not taken. */
  get held(): number {
    return this.output.writableLength + this.output.readableLength;
  }

  private poll(): void {
    this.tap.renew();
    this.drain();
    if (this.full) this.stop('count reached');
  }

  private drain(): void {
    const { records } = this.reader.consume();
    for (const raw of records) this.take(raw);
  }

  /** A copy as the perf buffer holds it: decoded and written, or (behind, full, stopped) only counted. */
  private take(raw: Buffer): void {
    const { direction, cpu, sequence } = captureRecordKey(raw);
    if (direction === CAPTURE_RECEIVED) {
      this.written.delete(cpu);
      if (this.full || this.stopped) return;
      if (this.held >= CAPTURE_OUTPUT_LIMIT || !this.output.writable) {
        this.droppedByDaemon++;
        return;
      }
      this.packets++;
      this.written.set(cpu, sequence);
    } else if (this.written.get(cpu) !== sequence) {
      return; // its received copy was dropped or lost, or came before the capture
    }
    const record = decodeCaptureRecord(raw);
    this.write(
      pcapngPacket({ time: record.timeNs + this.epochOffset, data: record.frame, length: record.length, comment: this.comment(record) }),
    );
  }

  /** e.g. `received tx_dsr vip=tcp/198.51.100.10:80 backend=10.0.0.11 packet=0:17` (CPU:sequence pairs the copies). */
  private comment(record: CaptureRecord): string {
    const { names } = this.options;
    const parts = [directionName(record), OUTCOMES[record.outcome] ?? `outcome_${record.outcome}`];
    if (record.vip_id !== CAPTURE_NONE) parts.push(`vip=${names.vip(record.vip_id) ?? `#${record.vip_id}`}`);
    if (record.backend_id !== CAPTURE_NONE) parts.push(`backend=${names.backend(record.backend_id) ?? `#${record.backend_id}`}`);
    parts.push(`packet=${record.cpu}:${record.sequence}`);
    return parts.join(' ');
  }

  /** Writes unless the client is gone (the output destroyed). */
  private write(bytes: Buffer): void {
    if (this.output.writable) this.output.write(bytes);
  }

  /** Ends the capture (once): kernel off, the rest drained, statistics written, output ended. */
  stop(reason: string): CaptureSummary {
    if (this.result) return this.result;
    clearInterval(this.timer);
    this.tap.stop();
    // Sent copies of packets already written may still wait in the buffers; nothing new is taken.
    this.stopped = true;
    this.drain();
    this.reader.close();
    const lostInKernel = this.tap.lostCopies();
    this.result = { packets: this.packets, lostInKernel, droppedByDaemon: this.droppedByDaemon, reason };
    this.write(
      pcapngStatistics({
        start: this.startNs,
        end: process.hrtime.bigint() + this.epochOffset,
        received: BigInt(this.packets + this.droppedByDaemon),
        lostInKernel: BigInt(lostInKernel),
        droppedByDaemon: BigInt(this.droppedByDaemon),
      }),
    );
    this.output.end();
    return this.result;
  }
}
