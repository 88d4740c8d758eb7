/**
 * Traces packets through the balancer's own code (the data plane's dry run), one at a
 * time: a flow becomes the frame its first packet makes, a frame is taken as it is.
 */
import { networkInterfaces } from 'node:os';
import type { Controller } from '../controller/controller.js';
import type { DryRunResult } from '../dataplane/dry-run.js';
import { parseMac } from '../net/address.js';
import { XlbError } from '../state/errors.js';
import { flowFrame } from './frame.js';
import { traceView } from './report.js';
import type { TracePacket, TraceView } from './schema.js';

/** Runs the balancer's code on a frame (Dataplane.trace); absent without a kernel data plane. */
export type DryRunner = (frame: Buffer) => DryRunResult;

/** The interface's MAC, the destination of a traced flow's frame (zero if it has none). */
function interfaceMac(iface: string): Buffer {
  const mac = networkInterfaces()[iface]?.[0]?.mac;
  return mac ? parseMac(mac) : Buffer.alloc(6);
}

/** The dry run's answer; a data plane that cannot run it (the load refused, say) is 503, naming why. */
function dryRun(run: DryRunner, frame: Buffer): DryRunResult {
  try {
    return run(frame);
  } catch (error) {
    throw new XlbError(503, 'dataplane_unavailable', `trace could not run the balancer: ${(error as Error).message}`);
  }
}

export class FlowTracer {
  constructor(
    private readonly controller: Controller,
    private readonly dryRun: DryRunner | undefined,
  ) {}

  /** Each packet's trace, in order; 503 without a kernel data plane. */
  trace(packets: TracePacket[]): TraceView[] {
    const run = this.dryRun;
    if (!run) throw new XlbError(503, 'dataplane_unavailable', 'trace needs the kernel data plane (this daemon runs without one)');
    const mac = interfaceMac(this.controller.status().interface);
    const state = this.controller.snapshot();
    return packets.map((packet) => {
      const result = dryRun(run, 'frame' in packet ? Buffer.from(packet.frame, 'hex') : flowFrame(packet, mac));
      const stored = result.vip ? state.vips.find((vip) => vip.id === result.vip!.id) : undefined;
      return traceView(result, stored && { stored, view: this.controller.vip(stored) });
    });
  }
}
