/**
 * Loading the balancer object at the sizes a daemon asks for: the map sizes, and the
 * pins it cannot adopt (another version or size, or following a map made afresh)
 * unpinned first so the load makes them afresh.
 */
import { BpfObject, possibleCpus } from '@xlb/native';
import { BALANCER_OBJECT, DEFAULT_FLOWS, DEFAULT_MAX_BACKENDS, DEFAULT_MAX_VIPS, DEFAULT_RING_SIZE, MAPS, OUTCOMES } from './codec.js';
import { flowTableBuckets } from './flow-table.js';
import { removeStalePins, unpinFollowersOfNewMaps, unpinMapsOfAnotherSize, unpinRingsOfAnotherSize } from './pins.js';
import { ringValues } from './rings.js';

export interface DataplaneOptions {
  objectPath?: string;
  /** Pin maps here and adopt compatible pins already there (hitless restart). */
  pinDir?: string | undefined;
  /** Maglev ring size M, a prime. */
  ringSize?: number;
  maxVips?: number;
  maxBackends?: number;
  /** Flows the connection table holds (rounded up to XLB_FLOW_WAYS times a power of two). */
  maxFlows?: number;
}

export type DataplaneSizes = Required<Omit<DataplaneOptions, 'pinDir' | 'objectPath'>>;

/**
 * Loads the balancer object at the sizes asked for, first unpinning pins it could not
 * adopt; returns what the Dataplane constructor takes.
 */
export function loadBalancer(options: DataplaneOptions): [BpfObject, DataplaneSizes, string[]] {
  const sizes = {
    ringSize: options.ringSize ?? DEFAULT_RING_SIZE,
    maxVips: options.maxVips ?? DEFAULT_MAX_VIPS,
    maxBackends: options.maxBackends ?? DEFAULT_MAX_BACKENDS,
    maxFlows: options.maxFlows ?? DEFAULT_FLOWS,
  };
  const maxEntries = {
    [MAPS.vips]: sizes.maxVips,
    [MAPS.vipAddresses]: sizes.maxVips,
    [MAPS.rings]: sizes.maxVips,
    [MAPS.vipStats]: sizes.maxVips,
    [MAPS.backends]: sizes.maxBackends,
    [MAPS.backendStats]: sizes.maxBackends,
    // A via-vip check has a TCP and a UDP entry.
    [MAPS.probes]: 2 * sizes.maxBackends,
    // One stamp a via-vip check, of its probes' protocol.
    [MAPS.probeSent]: sizes.maxBackends,
    [MAPS.flows]: flowTableBuckets(sizes.maxFlows),
    // A release with another outcome count makes its counters afresh.
    [MAPS.counters]: OUTCOMES.length,
    // One perf buffer per CPU; set here so that a pinned one is adopted on the same terms.
    [MAPS.capture]: possibleCpus(),
  };
  const replacedPins = options.pinDir
    ? [
        ...removeStalePins(options.pinDir),
        ...unpinMapsOfAnotherSize(options.pinDir, maxEntries),
        ...unpinRingsOfAnotherSize(options.pinDir, ringValues(sizes.ringSize)),
        ...unpinFollowersOfNewMaps(options.pinDir),
      ]
    : [];
  const object = new BpfObject(options.objectPath ?? BALANCER_OBJECT, {
    pinDir: options.pinDir,
    maxEntries,
    // Every ring has exactly this many values, so the verifier inlines ring lookups.
    innerMaxEntries: { [MAPS.rings]: ringValues(sizes.ringSize) },
  });
  return [object, sizes, replacedPins];
}
