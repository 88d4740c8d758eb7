/** The connection table's size: the real data plane and the in-memory model size it alike. */
import { FLOW_WAYS } from './codec.js';

/** Buckets of the connection table for a number of flows: a power of two. */
export const flowTableBuckets = (maxFlows: number) => 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(maxFlows / FLOW_WAYS))));
