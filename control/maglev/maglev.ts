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

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** The skip's hash starts FNV from the offset basis XOR this. */
const SKIP_SEED = 0x9e3779b9;

/** murmur3's 32-bit finaliser, to spread an FNV hash. */
function finalise(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Backend `key`'s permutation of `size` slots: offset, offset + skip, offset + 2 skip,
 * ... (mod size). Offset and skip come from FNV-1a over the key's UTF-8 bytes (two
 * seeds, one pass), each spread by murmur3's finaliser. int32 arithmetic until the
 * end, since an unsigned 32-bit hash is a double to V8.
 */
export function permutation(key: string, size: number): { offset: number; skip: number } {
  // Keys are addresses: ASCII, whose UTF-16 units are their UTF-8 bytes; any other key
  // becomes a string of its UTF-8 bytes first.
  const bytes = isAscii(key) ? key : Buffer.from(key, 'utf8').toString('latin1');
  let forOffset = FNV_OFFSET | 0;
  let forSkip = (FNV_OFFSET ^ SKIP_SEED) | 0;
  for (let i = 0; i < bytes.length; i++) {
    forOffset = Math.imul(forOffset ^ bytes.charCodeAt(i), FNV_PRIME);
    forSkip = Math.imul(forSkip ^ bytes.charCodeAt(i), FNV_PRIME);
  }
  return { offset: finalise(forOffset) % size, skip: (finalise(forSkip) % (size - 1)) + 1 };
}

function isAscii(key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The largest table (the paper's larger M; 80 KiB of flags) and backend count the
 * working arrays fit without growing. */
const WORK_SLOTS = 655373;
const WORK_BACKENDS = 4096;

/**
 * Every build's working arrays, reused (no fresh pages per build): the slot-taken
 * flags (one bit a slot) and, per rank, its walk (see claim()) and its index into
 * `backends`. claim() reads them from this module constant on every call, so V8
 * compiles each array as a constant inside the loops instead of re-checking a
 * parameter's array at every access. A field is replaced only to grow past
 * WORK_SLOTS or WORK_BACKENDS: slower from then on, never wrong.
 */
const work = {
  filled: new Int32Array(flagWords(WORK_SLOTS)),
  walks: new Int32Array(3 * WORK_BACKENDS),
  ids: new Uint32Array(WORK_BACKENDS),
};

function flagWords(size: number): number {
  return (size + 31) >>> 5;
}

/** Makes `work` fit `size` slots and `n` backends and clears the flags. */
function prepareWork(size: number, n: number): void {
  const words = flagWords(size);
  if (work.filled.length < words) work.filled = new Int32Array(words);
  if (work.ids.length < n) {
    work.walks = new Int32Array(3 * n);
    work.ids = new Uint32Array(n);
  }
  work.filled.fill(0, 0, words);
}

/**
 * The paper's round-robin population of the `n` ranks in `work`. The hot path: small
 * functions of typed arrays and no closures, which V8 inlines and optimises.
 */
function roundRobin(table: Uint32Array, n: number): void {
  const size = table.length | 0;
  for (let claimed = 0; ;) {
    for (let r = 0; r < n; r++) {
      claim(r, size, table);
      if (++claimed === size) return;
    }
  }
}

/**
 * Backend r takes the next free slot on its permutation. Its walk is three int32s in
 * `walks` (one array: fewer checks per claim than one per field): where it stands,
 * its step back (size - skip) and twice that (mod size). A step forward by skip is a
 * step back by size - skip plus size when below zero, without a branch
 * (`size & (slot >> 31)`), since whether a step wraps is unpredictable. int32
 * arithmetic (`| 0`) compiles without overflow checks. Each round tests the next two
 * slots, both stepped from the current one: two short dependency chains, not one long.
 */
function claim(r: number, size: number, table: Uint32Array): void {
  const { filled, walks, ids } = work;
  const back = walks[3 * r + 1]! | 0;
  const backTwice = walks[3 * r + 2]! | 0;
  let slot = walks[3 * r]! | 0;
  while (isTaken(filled, slot)) {
    const next = stepBack(slot, back, size);
    const afterNext = stepBack(slot, backTwice, size);
    if (!isTaken(filled, next)) {
      slot = next;
      break;
    }
    slot = afterNext;
  }
  filled[slot >>> 5]! |= 1 << slot;
  table[slot] = ids[r]!;
  walks[3 * r] = stepBack(slot, back, size);
}

const stepBack = (slot: number, back: number, size: number): number => {
  const stepped = (slot - back) | 0;
  return (stepped + (size & (stepped >> 31))) | 0;
};

/** The slot flags are a bitset: 80 KiB at M = 655373 stays in cache, where a byte a
 * slot (640 KiB) would not. */
const isTaken = (filled: Int32Array, slot: number): boolean => (filled[slot >>> 5]! & (1 << slot)) !== 0;

/**
 * Weighted turns by stride scheduling: backend r's pass advances by stride[r] =
 * 1/weight per turn; the lowest pass goes next, ties to the lower rank. A binary heap
 * of ranks keeps it O(M log N).
 */
function strideScheduling(table: Uint32Array, stride: Float64Array): void {
  const size = table.length;
  const n = stride.length;
  const pass = Float64Array.from(stride, (s) => s / 2);
  const heap = Int32Array.from({ length: n }, (_, r) => r);
  const less = (a: number, b: number) => pass[a]! < pass[b]! || (pass[a] === pass[b] && a < b);
  const siftDown = (i: number) => {
    const top = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && less(heap[l + 1]!, heap[l]!) ? l + 1 : l;
      if (!less(heap[c]!, top)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = top;
  };
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(i);
  for (let claimed = 0; claimed < size; claimed++) {
    const r = heap[0]!;
    claim(r, size, table);
    pass[r]! += stride[r]!;
    siftDown(0);
  }
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
  const keys = backends.map((b) => b.key);
  if (new Set(keys).size !== keys.length) throw new RangeError(`backend ${keys.find((key, i) => keys.indexOf(key) !== i)} given twice`);
  let equalWeights = true;
  for (const b of backends) {
    if (!Number.isInteger(b.weight) || b.weight <= 0) throw new RangeError(`backend ${b.key}: weight must be a positive integer`);
    equalWeights &&= b.weight === backends[0]!.weight;
  }

  const order = keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : 1));
  const n = order.length;
  // Backend r's permutation is offset, offset + skip, offset + 2 skip, ... (mod size);
  // its walk (see claim()) starts at offset and steps by one addition instead of
  // recomputing offset + j * skip (mod size) each time.
  prepareWork(size, n);
  const { walks, ids } = work;
  for (let r = 0; r < n; r++) {
    const { offset, skip } = permutation(keys[order[r]!]!, size);
    walks[3 * r] = offset;
    walks[3 * r + 1] = size - skip;
    walks[3 * r + 2] = (2 * (size - skip)) % size;
    ids[r] = order[r]!; // rank r's slots hold its index into `backends`
  }

  if (equalWeights) roundRobin(table, n);
  else
    strideScheduling(
      table,
      Float64Array.from(order, (i) => 1 / backends[i]!.weight),
    );
  return table;
}
