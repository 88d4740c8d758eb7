/**
 * Maglev lookup-table population (Eisenbud et al., NSDI 2016, section 3.4), with
 * weights. Each backend walks its own permutation of the M slots, defined by
 * offset = h1(key) mod M and skip = h2(key) mod (M - 1) + 1, and claims its next
 * free preferred slot whenever it gets a turn. With equal weights turns are plain
 * round-robin, as in the paper; with weights, turns go by stride scheduling (the
 * backend furthest behind weight-proportional share goes next), so slot counts
 * are proportional to weight within one slot.
 *
 * Backends are ordered by key first, so the table does not depend on the order
 * they are given in.
 */

export interface MaglevBackend {
  /** Stable identity, e.g. the backend address: it alone decides the permutation. */
  key: string;
  /** Positive integer weight. */
  weight: number;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** FNV-1a over the UTF-8 key with a seed, then murmur3's finaliser to spread it. */
const ASCII = /^[\x00-\x7f]*$/;

function keyHash(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  const mix = (byte: number) => {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  // Keys are addresses: ASCII, whose UTF-16 units are their UTF-8 bytes.
  if (ASCII.test(key)) for (let i = 0; i < key.length; i++) mix(key.charCodeAt(i));
  else for (const byte of Buffer.from(key, 'utf8')) mix(byte);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Backend `key`'s permutation of `size` slots: offset, offset + skip, offset + 2 skip, ... (mod size). */
export function permutation(key: string, size: number): { offset: number; skip: number } {
  return { offset: keyHash(key, 0) % size, skip: (keyHash(key, 0x9e3779b9) % (size - 1)) + 1 };
}

/**
 * The paper's round-robin population. The hot path: kept to small functions of typed
 * arrays, which V8 inlines and optimises well (a closure here was twice as slow).
 */
function roundRobin(table: Uint32Array, filled: Uint8Array, position: Int32Array, skip: Int32Array, ids: Uint32Array): void {
  const n = position.length;
  for (let claimed = 0; ; ) {
    for (let r = 0; r < n; r++) {
      claim(r, table, filled, position, skip, ids);
      if (++claimed === table.length) return;
    }
  }
}

/**
 * Backend r takes the next free slot on its permutation. Stepping forward by skip is
 * done as stepping back by size - skip and adding size back when that went below
 * zero, without a branch (`size & (slot >> 31)`): whether a step wraps is a coin
 * toss the CPU cannot predict (~15% faster). int32 arithmetic throughout (`| 0`),
 * which V8 compiles without overflow checks.
 */
function claim(r: number, table: Uint32Array, filled: Uint8Array, position: Int32Array, skip: Int32Array, ids: Uint32Array): void {
  const size = table.length | 0;
  const back = (size - skip[r]) | 0;
  let slot = position[r] | 0;
  while (filled[slot] !== 0) slot = stepBack(slot, back, size);
  filled[slot] = 1;
  table[slot] = ids[r];
  position[r] = stepBack(slot, back, size);
}

const stepBack = (slot: number, back: number, size: number): number => {
  const stepped = (slot - back) | 0;
  return (stepped + (size & (stepped >> 31))) | 0;
};

/**
 * Weighted turns by stride scheduling: backend r's pass advances by stride[r] =
 * 1/weight per turn; the lowest pass goes next, ties to the lower rank. A binary heap
 * of ranks keeps it O(M log N).
 */
function strideScheduling(table: Uint32Array, filled: Uint8Array, position: Int32Array, skip: Int32Array, ids: Uint32Array, stride: Float64Array): void {
  const size = table.length;
  const n = position.length;
  const pass = Float64Array.from(stride, (s) => s / 2);
  const heap = Int32Array.from({ length: n }, (_, r) => r);
  const less = (a: number, b: number) => pass[a] < pass[b] || (pass[a] === pass[b] && a < b);
  const siftDown = (i: number) => {
    const top = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && less(heap[l + 1], heap[l]) ? l + 1 : l;
      if (!less(heap[c], top)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = top;
  };
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(i);
  for (let claimed = 0; claimed < size; claimed++) {
    const r = heap[0];
    claim(r, table, filled, position, skip, ids);
    pass[r] += stride[r];
    siftDown(0);
  }
}

/** The slot-taken flags, reused across builds: a fresh array's pages cost more to
 * fault in than the build takes to clear them. */
let filledScratch = new Uint8Array(0);

function scratch(size: number): Uint8Array {
  if (filledScratch.length < size) filledScratch = new Uint8Array(size);
  const filled = filledScratch.subarray(0, size);
  filled.fill(0);
  return filled;
}

/**
 * Builds the table: entry i is the index (into `backends`) of the backend that
 * owns slot i. Every slot is filled when at least one backend is given. The table is
 * written into `into` when given (of length `size`; a caller building many tables
 * reuses one array instead of faulting in a new one each time), else a new array.
 */
export function buildMaglevTable(backends: readonly MaglevBackend[], size: number, into?: Uint32Array): Uint32Array {
  if (!isPrime(size)) throw new RangeError(`Maglev table size must be prime, got ${size}`);
  if (into && into.length !== size) throw new RangeError(`table array has ${into.length} slots, expected ${size}`);
  const table = into ?? new Uint32Array(size);
  if (backends.length === 0) throw new RangeError('Maglev table needs at least one backend');
  if (backends.length > size) throw new RangeError(`${backends.length} backends do not fit ${size} slots`);
  const seen = new Set<string>();
  for (const b of backends) {
    if (!Number.isInteger(b.weight) || b.weight <= 0) throw new RangeError(`backend ${b.key}: weight must be a positive integer`);
    if (seen.has(b.key)) throw new RangeError(`backend ${b.key} given twice`);
    seen.add(b.key);
  }

  const order = backends.map((_, i) => i).sort((a, b) => (backends[a].key < backends[b].key ? -1 : 1));
  const n = order.length;
  // Backend r's permutation is offset, offset + skip, offset + 2 skip, ... (mod size);
  // `position` is where it stands on it, stepped by one addition instead of
  // recomputing offset + j * skip (mod size) each time.
  const position = new Int32Array(n);
  const skip = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const { offset, skip: step } = permutation(backends[order[r]].key, size);
    position[r] = offset;
    skip[r] = step;
  }
  const filled = scratch(size);
  // Rank r's slots hold its index into `backends`.
  const ids = Uint32Array.from(order);

  const weights = order.map((i) => backends[i].weight);
  if (weights.every((w) => w === weights[0])) {
    roundRobin(table, filled, position, skip, ids);
    return table;
  }

  strideScheduling(table, filled, position, skip, ids, Float64Array.from(weights, (w) => 1 / w));
  return table;
}
