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

export class CaptureTap {
  constructor(
    /** The program's .data.capture: the settings, alone in it. */
    private readonly settings: BpfMap,
    private readonly events: BpfMap,
    private readonly scratch: BpfMap,
  ) {}

  /** Copies the kernel could not hand over (the buffer full) since the last start(). */
  lostCopies(): number {
    return sumPerCpu(captureScratchCodec, this.scratch.lookup(u32Bytes(0))!).lost;
  }

  /**
   * Empties the scratch (no copy left from an earlier capture, losses from zero), opens
   * the per-CPU buffers, then switches the kernel's copying on.
   */
  start(settings: CaptureSettings): PerfReader {
    this.scratch.update(u32Bytes(0), Buffer.alloc(this.scratch.lookup(u32Bytes(0))!.length));
    const reader = new PerfReader(this.events, PAGES_PER_CPU);
    this.write(settings, true);
    return reader;
  }

  /** Switches the kernel's copying off. */
  stop(): void {
    this.write({ vipId: null, backend: null, outcomes: 0, snaplen: 0 }, false);
  }

  /** The settings as the kernel holds them. */
  read(): CaptureSettings & { on: boolean } {
    const s = captureSettingsCodec.decode(this.settings.lookup(u32Bytes(0))!);
    return {
      on: s.on !== 0,
      vipId: s.vip_id === CAPTURE_NONE ? null : s.vip_id,
      backend: s.backend_family ? { family: s.backend_family as 4 | 6, address: s.backend_addr } : null,
      outcomes: s.outcomes,
      snaplen: s.snaplen,
    };
  }

  private write(settings: CaptureSettings, on: boolean): void {
    const value = captureSettingsCodec.encode({
      on: on ? 1 : 0,
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
