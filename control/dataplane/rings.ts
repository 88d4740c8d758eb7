/**
 * Maglev rings as the balancer holds them: each VIP's ring is an inner array map of
 * backend ids, XLB_RING_IDS_PER_VALUE to a value, in the map of rings.
 */
import { BpfMap } from '@xlb/native';
import { RING_IDS_PER_VALUE } from './codec.js';

const BPF_MAP_TYPE_ARRAY = 2;
/** Rings carry the flags of the object's inner-map template (see xlb_ring in the C). */
export const RING_FLAGS = 0x400; /* BPF_F_MMAPABLE */

/** Values of a ring of `ringSize` slots. */
export const ringValues = (ringSize: number) => Math.ceil(ringSize / RING_IDS_PER_VALUE);

/** A new ring map holding `backendIds` (one per slot). */
export function createRing(backendIds: Uint32Array): BpfMap {
  const ring = BpfMap.create(BPF_MAP_TYPE_ARRAY, 4, 4 * RING_IDS_PER_VALUE, ringValues(backendIds.length), 'xlb_ring', RING_FLAGS);
  try {
    // The ids fill the values back to back (no padding): one copy as they are.
    ring.writeMapped(Buffer.from(backendIds.buffer, backendIds.byteOffset, backendIds.byteLength));
    return ring;
  } catch (error) {
    ring.close();
    throw error;
  }
}

/** The `ringSize` backend ids of the ring map with kernel id `mapId`. */
export function readRing(mapId: number, ringSize: number): Uint32Array {
  const ring = BpfMap.fromId(mapId);
  try {
    const slots = new Uint32Array(ringSize);
    // Host-order ids back to back: one copy into the typed array's bytes.
    Buffer.from(slots.buffer).set(ring.readMapped().subarray(0, slots.byteLength));
    return slots;
  } finally {
    ring.close();
  }
}
