/**
 * The balancer's hashes (bpf/lib/jhash.h, flow_hash() and flow_table_hash() in
 * bpf/xlb_balancer.bpf.c) over 32-bit words of the flow key, read in host
 * (little-endian) order. Let tests and tools predict a flow's ring slot and find it in
 * the connection table.
 */
import { FAMILY_V4, flowKeyCodec, VIP_F_SOURCE_AFFINITY } from './codec.js';

const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (w: number, s: number) => ((w << s) | (w >>> (32 - s))) >>> 0;

function jhash2(words: ArrayLike<number>, initval: number): number {
  let length = words.length;
  let a = (JHASH_INITVAL + (length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  while (length > 3) {
    a = (a + words[k]!) >>> 0;
    b = (b + words[k + 1]!) >>> 0;
    c = (c + words[k + 2]!) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    length -= 3;
    k += 3;
  }
  if (length === 0) return c;
  if (length === 3) c = (c + words[k + 2]!) >>> 0;
  if (length >= 2) b = (b + words[k + 1]!) >>> 0;
  a = (a + words[k]!) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 24)) >>> 0;
  return c;
}

const U64 = (1n << 64n) - 1n;

/** nh4(): NH hashing of four words under four key words, as a 64-bit sum. */
function nh4(words: number[], key: Buffer, keyWord: number): bigint {
  const term = (i: number) => BigInt((words[i]! + key.readUInt32LE((keyWord + i) * 4)) >>> 0);
  return (term(0) * term(1) + term(2) * term(3)) & U64;
}

/** What flow_table_hash() gives: the bucket (before the mask) and the fingerprint. */
export interface TableHash {
  bucket: number;
  tag: number;
  /** Before the backend id is XORed in. */
  check: number;
}

/** The connection-table hash of an encoded struct xlb_flow_key under xlb_config.flow_key. */
export function tableHash(flowKey: Buffer, key: Buffer): TableHash {
  const w = Array.from({ length: 10 }, (_, i) => flowKey.readUInt32LE(i * 4));
  const ports = (w[8]! ^ w[9]!) >>> 0;
  const v4 = flowKey[flowKeyCodec.offsets.family] === FAMILY_V4;
  const source = v4 ? BigInt(w[0]!) : nh4(w.slice(0, 4), key, 4);
  const dst = v4 ? w[4]! : (w[4]! ^ w[5]! ^ w[6]! ^ w[7]!) >>> 0;
  let mixed = nh4([Number(source & 0xffffffffn), Number(source >> 32n), dst, ports], key, 0);
  mixed ^= mixed >> 29n;
  mixed = (mixed * 0xbf58476d1ce4e5b9n) & U64;
  return { bucket: Number(mixed >> 32n), tag: Number(source & 0xffffffffn), check: (Number(source >> 32n) ^ ports) >>> 0 };
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
