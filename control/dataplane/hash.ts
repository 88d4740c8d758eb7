/**
 * The balancer's hashes (bpf/lib/jhash.h, flow_hash() and flow_table_hash() in
 * bpf/xlb_balancer.bpf.c): jhash2 over 32-bit words of the flow key, read in host
 * (little-endian) order. Lets tests and tools predict a flow's ring slot and find it
 * in the connection table.
 */
import { FAMILY_V4, flowKeyCodec, VIP_F_SOURCE_AFFINITY } from './codec.js';

const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (w: number, s: number) => ((w << s) | (w >>> (32 - s))) >>> 0;

/** jhash2's final state [a, b, c]; c is the hash. */
function jhash2State(words: ArrayLike<number>, initval: number): [number, number, number] {
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
  if (length === 0) return [a, b, c];
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
  return [a, b, c];
}

export const jhash2 = (words: ArrayLike<number>, initval: number): number => jhash2State(words, initval)[2];

/** fold_source_v6(): NH hashing of four address words under four key words. */
function foldSourceV6(word: (i: number) => number, fold: Buffer): number {
  const term = (i: number) => BigInt((word(i) + fold.readUInt32LE(i * 4)) >>> 0);
  const sum = (term(0) * term(1) + term(2) * term(3)) & 0xffffffffffffffffn;
  return (Number(sum & 0xffffffffn) ^ Number(sum >> 32n)) >>> 0;
}

export interface TableHash {
  bucket: number;
  /** What struct xlb_flow_entry holds: tag, and check before the backend id is XORed in. */
  tag: number;
  check: number;
}

/** The connection-table hash of an encoded struct xlb_flow_key (flow_table_hash()), under xlb_config's flow_seed and flow_fold. */
export function tableHash(flowKey: Buffer, seed: number, fold: Buffer): TableHash {
  const w = (i: number) => flowKey.readUInt32LE(i * 4);
  const ports = (w(8) ^ w(9)) >>> 0;
  const words = flowKey[flowKeyCodec.offsets.family] === FAMILY_V4 ? [w(0), w(4), ports] : [foldSourceV6(w, fold), (w(4) ^ w(5) ^ w(6) ^ w(7)) >>> 0, ports];
  const [check, tag, bucket] = jhash2State(words, seed);
  return { bucket, tag: (tag | 1) >>> 0, check };
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
