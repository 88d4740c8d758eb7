/**
 * The balancer's flow hash (bpf/lib/jhash.h and flow_hash() in
 * bpf/xlb_balancer.bpf.c): jhash2 over 32-bit words of the flow key, read in host
 * (little-endian) order. Lets tests and tools predict a flow's ring slot.
 */
import { FAMILY_V4, flowKeyCodec, VIP_F_SOURCE_AFFINITY } from './codec.js';

const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (w: number, s: number) => ((w << s) | (w >>> (32 - s))) >>> 0;

export function jhash2(words: ArrayLike<number>, initval: number): number {
  let length = words.length;
  let a = (JHASH_INITVAL + (length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  while (length > 3) {
    a = (a + words[k]) >>> 0;
    b = (b + words[k + 1]) >>> 0;
    c = (c + words[k + 2]) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol32(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol32(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol32(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol32(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol32(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol32(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 3;
    k += 3;
  }
  if (length === 0) return c;
  if (length === 3) c = (c + words[k + 2]) >>> 0;
  if (length >= 2) b = (b + words[k + 1]) >>> 0;
  a = (a + words[k]) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** The connection table's bucket hash of an encoded struct xlb_flow_key (flow_table_hash()). */
export function tableHash(flowKey: Buffer, seed: number): number {
  const w = (i: number) => flowKey.readUInt32LE(i * 4);
  if (flowKey[flowKeyCodec.offsets.family] === FAMILY_V4) return jhash2([w(0), w(4), w(8)], seed);
  return jhash2([(w(0) ^ w(1) ^ w(2) ^ w(3)) >>> 0, (w(4) ^ w(5) ^ w(6) ^ w(7)) >>> 0, w(8)], seed);
}

/** The ring hash of an encoded struct xlb_flow_key under a VIP's flags (flow_hash()). */
export function flowHash(flowKey: Buffer, vipFlags: number, seed: number): number {
  const word = (offset: number) => flowKey.readUInt32LE(offset);
  const { src, dst, sport } = flowKeyCodec.offsets;
  const affinity = (vipFlags & VIP_F_SOURCE_AFFINITY) !== 0;
  if (flowKey[flowKeyCodec.offsets.family] === FAMILY_V4) {
    return affinity ? jhash2([word(src)], seed) : jhash2([word(src), word(dst), word(sport)], seed);
  }
  const words = Array.from({ length: affinity ? 4 : 9 }, (_, i) => word(i * 4));
  return jhash2(words, seed);
}
