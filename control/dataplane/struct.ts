/**
 * Fixed-layout C struct codecs. Offsets follow the C rules (each field aligned to
 * its own size, the struct to its largest field), so a codec declared in the same
 * field order as bpf/include/xlb.h has the same layout; test/btf-layout.test.ts
 * checks that against the compiled object's BTF.
 */

/** Field kinds: little-endian host integers, a network-order u16, raw bytes. */
export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | { bytes: number };

type FieldValue<K extends FieldKind> = K extends { bytes: number } ? Buffer : number;

export type StructValue<F extends Record<string, FieldKind>> = { [N in keyof F]: FieldValue<F[N]> };

export interface StructCodec<F extends Record<string, FieldKind>> {
  readonly name: string;
  readonly size: number;
  readonly offsets: { readonly [N in keyof F]: number };
  readonly fields: F;
  encode(value: Partial<StructValue<F>>): Buffer;
  decode(buffer: Buffer, offset?: number): StructValue<F>;
}

function kindSize(kind: FieldKind): number {
  if (typeof kind === 'object') return kind.bytes;
  return { u8: 1, u16: 2, be16: 2, u32: 4, u64: 8 }[kind];
}

function kindAlign(kind: FieldKind): number {
  return typeof kind === 'object' ? 1 : kindSize(kind);
}

export function defineStruct<F extends Record<string, FieldKind>>(name: string, fields: F): StructCodec<F> {
  const offsets: Record<string, number> = {};
  let offset = 0;
  let align = 1;
  for (const [field, kind] of Object.entries(fields)) {
    const a = kindAlign(kind);
    offset = Math.ceil(offset / a) * a;
    offsets[field] = offset;
    offset += kindSize(kind);
    align = Math.max(align, a);
  }
  const size = Math.ceil(offset / align) * align;

  const encode = (value: Partial<StructValue<F>>): Buffer => {
    const buf = Buffer.alloc(size);
    for (const [field, kind] of Object.entries(fields)) {
      const v = (value as Record<string, unknown>)[field];
      if (v === undefined) continue;
      const at = offsets[field]!;
      if (typeof kind === 'object') {
        const bytes = v as Buffer;
        if (bytes.length > kind.bytes) throw new RangeError(`${name}.${field}: ${bytes.length} bytes, at most ${kind.bytes}`);
        bytes.copy(buf, at);
        continue;
      }
      const n = v as number;
      if (kind === 'u8') buf.writeUInt8(n, at);
      else if (kind === 'u16') buf.writeUInt16LE(n, at);
      else if (kind === 'be16') buf.writeUInt16BE(n, at);
      else if (kind === 'u32') buf.writeUInt32LE(n, at);
      else buf.writeBigUInt64LE(BigInt(n), at);
    }
    return buf;
  };

  const decode = (buf: Buffer, base = 0): StructValue<F> => {
    const out: Record<string, unknown> = {};
    for (const [field, kind] of Object.entries(fields)) {
      const at = base + offsets[field]!;
      if (typeof kind === 'object') out[field] = Buffer.from(buf.subarray(at, at + kind.bytes));
      else if (kind === 'u8') out[field] = buf.readUInt8(at);
      else if (kind === 'u16') out[field] = buf.readUInt16LE(at);
      else if (kind === 'be16') out[field] = buf.readUInt16BE(at);
      else if (kind === 'u32') out[field] = buf.readUInt32LE(at);
      else out[field] = Number(buf.readBigUInt64LE(at));
    }
    return out as StructValue<F>;
  };

  return { name, size, offsets: offsets as StructCodec<F>['offsets'], fields, encode, decode };
}

/** The bytes of one CPU's slot in a per-CPU map value: the struct's size, 8-byte aligned. */
export const perCpuSlot = (size: number) => Math.ceil(size / 8) * 8;

/** Sums a per-CPU map value (one 8-byte-aligned slot per CPU) field by field. */
export function sumPerCpu<F extends Record<string, FieldKind>>(codec: StructCodec<F>, value: Buffer): StructValue<F> {
  const slot = perCpuSlot(codec.size);
  const total = codec.decode(Buffer.alloc(codec.size)) as Record<string, unknown>;
  for (let at = 0; at + codec.size <= value.length; at += slot) {
    const one = codec.decode(value, at) as Record<string, unknown>;
    for (const field of Object.keys(total)) {
      if (typeof total[field] === 'number') total[field] += one[field] as number;
    }
  }
  return total as StructValue<F>;
}

/** A u32 as the 4 host-order (little-endian) bytes of a map key or value. */
export function u32Bytes(n: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(n);
  return bytes;
}
