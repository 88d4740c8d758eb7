/** An in-process daemon on the in-memory data plane, with neighbours the test sets: no root, no kernel. */
import { canonicalAddress } from '../../control/net/address.js';
import { DataplaneModel, type ModelSizes } from './dataplane-model.js';
import { type InProcessDaemon, type InProcessOptions, startInProcessDaemon } from './in-process-daemon.js';

/** A neighbour table the test fills: address -> MAC. */
export class StaticNeighbours {
  readonly macs = new Map<string, Buffer>();

  async refresh(): Promise<Set<string>> {
    return new Set();
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
  } = {},
): Promise<ModelDaemon> {
  const neighbours = options.neighbours ?? new StaticNeighbours();
  const daemon = await startInProcessDaemon(new DataplaneModel(options), {
    token: options.token,
    dir: options.dir,
    neighbours,
    mutationsPerMinute: options.mutationsPerMinute,
    log: options.log,
  });
  return { ...daemon, neighbours };
}
