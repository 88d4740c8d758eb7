/** An in-process daemon on the in-memory data plane, with neighbours the test sets: no root, no kernel. */
import { canonicalAddress } from '../../control/net/address.js';
import { DataplaneModel, type ModelSizes } from './dataplane-model.js';
import { type InProcessDaemon, type InProcessOptions, startInProcessDaemon } from './in-process-daemon.js';

/** A neighbour table the test fills: address -> MAC. */
export class StaticNeighbours {
  readonly macs = new Map<string, Buffer>();
  private reported = new Map<string, Buffer>();

  /** The wanted addresses whose MAC the test changed since the last refresh. */
  async refresh(wanted: string[]): Promise<Set<string>> {
    const same = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);
    const key = (address: string) => canonicalAddress(address);
    const changed = new Set(wanted.filter((a) => !same(this.macs.get(key(a)), this.reported.get(key(a)))));
    this.reported = new Map(this.macs);
    return changed;
  }

  mac(address: string): Buffer | null {
    return this.macs.get(canonicalAddress(address)) ?? null;
  }
}

export type ModelDaemon = InProcessDaemon<DataplaneModel> & { neighbours: StaticNeighbours };

export async function startModelDaemon(
  options: Partial<ModelSizes> & {
    token?: string;
    dir?: string;
    neighbours?: StaticNeighbours;
    mutationsPerMinute?: number;
    log?: InProcessOptions['log'];
    dryRun?: InProcessOptions['dryRun'];
    floodThreshold?: number;
  } = {},
): Promise<ModelDaemon> {
  const neighbours = options.neighbours ?? new StaticNeighbours();
  const daemon = await startInProcessDaemon(new DataplaneModel(options), {
    token: options.token,
    dir: options.dir,
    neighbours,
    mutationsPerMinute: options.mutationsPerMinute,
    log: options.log,
    dryRun: options.dryRun,
    floodThreshold: options.floodThreshold,
  });
  return { ...daemon, neighbours };
}
