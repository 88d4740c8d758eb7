/** Reading per-CPU arrays: each value is one 8-byte-aligned slot of the struct per possible CPU. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type BpfMap, possibleCpus } from '@xlb/native';
import { type FieldKind, perCpuSlot, type StructCodec, sumPerCpu, type StructValue, u32Bytes } from './struct.js';

/** Up to this many entries are looked up one by one; more, the whole array is read in one batch. */
export const LOOKUPS_UP_TO = 8;

/** A per-CPU array read whole, as a function from index to its value summed over CPUs. */
export function perCpuTable<F extends Record<string, FieldKind>>(map: BpfMap, codec: StructCodec<F>): (index: number) => StructValue<F> {
  const { values } = map.lookupAll();
  const bytes = perCpuSlot(codec.size) * possibleCpus();
  return (index) => sumPerCpu(codec, values.subarray(index * bytes, (index + 1) * bytes));
}

/**
 * The per-CPU values of the entries at `indexes`: a few looked up one by one, more in
 * one batch of the whole array (65,536 lookups take ~340 ms, their batch ~6 ms).
 */
export function perCpuValues(map: BpfMap, codec: { size: number }, indexes: readonly number[]): (index: number) => Buffer {
  if (indexes.length <= LOOKUPS_UP_TO) {
    const values = new Map(indexes.map((index) => [index, map.lookup(u32Bytes(index))!]));
    return (index) => values.get(index)!;
  }
  const { values } = map.lookupAll();
  const bytes = perCpuSlot(codec.size) * possibleCpus();
  return (index) => values.subarray(index * bytes, (index + 1) * bytes);
}

/** CPUs 0 up to the highest of a kernel CPU list ("0-3,6": 7); NaN when it is none. */
export function cpusThroughHighest(list: string): number {
  return (
    Math.max(
      ...list
        .trim()
        .split(',')
        .map((range) => Number(range.split('-').at(-1))),
    ) + 1
  );
}

/**
 * The CPUs a per-CPU value can count on: up to the highest online one (sysfs), not every
 * possible one (a VM may have 2 online of 128 possible; the others' slots stay 0).
 */
export function onlineCpus(): number {
  let online = NaN;
  try {
    online = cpusThroughHighest(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  } catch {
    // No sysfs: the CPUs Node sees.
  }
  return Math.min(Number.isInteger(online) && online > 0 ? online : availableParallelism(), possibleCpus());
}
