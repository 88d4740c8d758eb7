/**
 * The balancer's capture switch (struct xlb_capture_settings, its .data.capture) and the
 * reader of the copies it sends to xlb_capture_v1. Mechanism only: sessions, files
 * and clients are control/capture's.
 */
import { type BpfMap, PerfReader } from '@xlb/native';
import type { CaptureSettings } from './capture-record.js';
import { CAPTURE_NONE, captureScratchCodec, captureSettingsCodec } from './codec.js';
import { sumPerCpu, u32Bytes } from './struct.js';

/** Pages of each CPU's perf buffer (a power of two): 1 MiB per CPU. */
const PAGES_PER_CPU = 256;
/** How long the kernel copies without a renew(): a daemon killed mid-capture costs the balancer this long at most. */
export const CAPTURE_LEASE_NS = 1_000_000_000n;

export class CaptureTap {
  /** The settings of the capture running, which renew() writes again. */
  private running: CaptureSettings | null = null;

  constructor(
    /** The program's .data.capture: the settings, alone in it. */
    private readonly settings: BpfMap,
    private readonly events: BpfMap,
    private readonly scratch: BpfMap,
    /** How far ahead start() and renew() set the lease. */
    private readonly leaseNs = CAPTURE_LEASE_NS,
  ) {}

  /** Copies the kernel could not hand over (the buffer full) since the last start(). */
  lostCopies(): number {
    return sumPerCpu(captureScratchCodec, this.scratch.lookup(u32Bytes(0))!).lost;
  }

  /**
   * Empties the scratch (no copy left from an earlier capture, losses from zero), opens
   * the per-CPU buffers, then switches the kernel's copying on for a lease that renew() extends.
   */
  start(settings: CaptureSettings): PerfReader {
    this.scratch.update(u32Bytes(0), Buffer.alloc(this.scratch.lookup(u32Bytes(0))!.length));
    const reader = new PerfReader(this.events, PAGES_PER_CPU);
    this.running = settings;
    this.renew();
    return reader;
  }

  /** Extends the running capture's lease to a lease's length from now (the settings rewritten as started). */
  renew(): void {
    // The kernel's clock (bpf_ktime_get_ns) is CLOCK_MONOTONIC, as process.hrtime's.
    if (this.running) this.write(this.running, Number(process.hrtime.bigint() + this.leaseNs));
  }

  /** Switches the kernel's copying off. */
  stop(): void {
    this.running = null;
    this.write({ vipId: null, backend: null, outcomes: 0, snaplen: 0 }, 0);
  }

  /** The settings as the kernel holds them; untilNs 0: off. */
  read(): CaptureSettings & { on: boolean; untilNs: number } {
    const s = captureSettingsCodec.decode(this.settings.lookup(u32Bytes(0))!);
    return {
      on: s.until_ns !== 0,
      untilNs: s.until_ns,
      vipId: s.vip_id === CAPTURE_NONE ? null : s.vip_id,
      backend: s.backend_family ? { family: s.backend_family as 4 | 6, address: s.backend_addr } : null,
      outcomes: s.outcomes,
      snaplen: s.snaplen,
    };
  }

  private write(settings: CaptureSettings, untilNs: number): void {
    const value = captureSettingsCodec.encode({
      until_ns: untilNs,
      vip_id: settings.vipId ?? CAPTURE_NONE,
      outcomes: settings.outcomes,
      snaplen: settings.snaplen,
      backend_addr: settings.backend?.address ?? Buffer.alloc(16),
      backend_family: settings.backend?.family ?? 0,
      pad: Buffer.alloc(3),
    });
    this.settings.update(u32Bytes(0), value);
  }
}
