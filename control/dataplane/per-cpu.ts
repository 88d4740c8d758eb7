/** Reading per-CPU arrays: each value is one 8-byte-aligned slot of the struct per possible CPU. */
import { type BpfMap, possibleCpus } from '@xlb/native';
import { type FieldKind, type StructCodec, sumPerCpu, type StructValue, u32Bytes } from './struct.js';

const slotSize = (codec: { size: number }) => Math.ceil(codec.size / 8) * 8;

/** A per-CPU array read whole, as a function from index to its value summed over CPUs. */
export function perCpuTable<F extends Record<string, FieldKind>>(map: BpfMap, codec: StructCodec<F>): (index: number) => StructValue<F> {
  const { values } = map.lookupAll();
  const bytes = slotSize(codec) * possibleCpus();
  return (index) => sumPerCpu(codec, values.subarray(index * bytes, (index + 1) * bytes));
}

/**
 * A u64 field of the entries at `indexes`, summed over them, by CPU. Each entry is read
 * alone: a reader of a few entries every second does not copy the whole array.
 */
export function sumFieldByCpu<F extends Record<string, FieldKind>>(
  map: BpfMap,
  codec: StructCodec<F>,
  field: keyof F & string,
  indexes: Iterable<number>,
  checkIndex: (index: number) => void,
): number[] {
  const totals = new Array<number>(possibleCpus()).fill(0);
  for (const index of indexes) {
    checkIndex(index);
    const value = map.lookup(u32Bytes(index))!;
    for (let cpu = 0; cpu < totals.length; cpu++)
      totals[cpu]! += Number(value.readBigUInt64LE(cpu * slotSize(codec) + codec.offsets[field]));
  }
  return totals;
}
