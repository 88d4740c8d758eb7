/** Thin, typed binding over the system libbpf. Every wrapper owns one file descriptor: call close(). */

/** Thrown by every failing call. */
export interface BpfError extends Error {
  errno: number;
  /** errno name, e.g. "EPERM". */
  code: string;
  /** The libbpf call or operation that failed. */
  op: string;
  /** libbpf's and the verifier's messages, on open/load failures. */
  verifierLog?: string;
}

export interface MapInfo {
  id: number;
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Lookups return one 8-byte-aligned value slot per possible CPU. */
  perCpu: boolean;
}

export class BpfMap {
  readonly fd: number;
  readonly info: MapInfo;
  /** The value, or null when the key is absent. Map-in-map lookups return the inner map's id. */
  lookup(key: Buffer): Buffer | null;
  /** value: bytes; the inner map itself for a map-in-map; the program for a prog array. flags: BPF_ANY/NOEXIST/EXIST. */
  update(key: Buffer, value: Buffer | BpfMap | BpfProgram, flags?: number): void;
  /** false when the key was absent. */
  delete(key: Buffer): boolean;
  /** The key after `key` (the first for null), or null at the end. */
  nextKey(key: Buffer | null): Buffer | null;
  /** `count` keys and values packed back to back, in one syscall. */
  updateBatch(keys: Buffer, values: Buffer, count: number, flags?: number): void;
  /** Every entry in a few BPF_MAP_LOOKUP_BATCH calls: keys and values (per-CPU: one 8-byte-aligned slot per possible CPU) back to back. */
  lookupAll(): { count: number; keys: Buffer; values: Buffer };
  /** Copies bytes to a BPF_F_MMAPABLE array's memory (each value padded to 8 bytes) through mmap. */
  writeMapped(bytes: Buffer): void;
  /** A copy of a BPF_F_MMAPABLE array's memory (each value padded to 8 bytes), or of its first `length` bytes. */
  readMapped(length?: number): Buffer;
  close(): void;
  static create(type: number, keySize: number, valueSize: number, maxEntries: number, name: string, flags?: number): BpfMap;
  static fromId(id: number): BpfMap;
  static fromPin(path: string): BpfMap;
}

export interface TestRunOptions {
  data: Buffer;
  repeat?: number;
  /** BPF_F_TEST_XDP_LIVE_FRAMES sends the frames for real; ifindex is then required. */
  flags?: number;
  ifindex?: number;
  batchSize?: number;
}

export interface TestRunResult {
  retval: number;
  /** The packet after the program ran (empty for live frames). */
  data: Buffer;
  /** Mean nanoseconds per run, as the kernel measured it. */
  duration: number;
}

export class BpfProgram {
  readonly fd: number;
  readonly info: { id: number; name: string; type: number };
  testRun(options: TestRunOptions): TestRunResult;
  close(): void;
  static fromId(id: number): BpfProgram;
}

export interface ObjectOptions {
  /** Map name -> max_entries, set before load. */
  maxEntries?: Record<string, number>;
  /** Map-in-map name -> max_entries of its inner-map template (a template of that size replaces the object's). */
  innerMaxEntries?: Record<string, number>;
  /** Pin every map as DIR/NAME, reusing compatible pins already there. */
  pinDir?: string | undefined;
  /** Map name -> an open map the load uses instead of making its own (as it is: type, sizes, contents); never pinned. */
  reuseMaps?: Record<string, BpfMap>;
}

/** Opens and loads a BPF ELF object. */
export class BpfObject {
  constructor(path: string, options?: ObjectOptions);
  map(name: string): BpfMap;
  program(name: string): BpfProgram;
  mapNames(): string[];
  close(): void;
}

/** Reads the records a BPF program writes into a perf event array (one buffer per CPU, installed in the map). */
export class PerfReader {
  /** pagesPerCpu: a power of two. */
  constructor(map: BpfMap, pagesPerCpu: number);
  /** Without waiting: the records every CPU's buffer holds (each padded to 8 bytes) and how many the kernel lost since the last call. */
  consume(): { records: Buffer[]; lost: number };
  /** Frees the buffers; the map's slots empty. */
  close(): void;
}

export type XdpMode = 'native' | 'generic';

export function xdpAttach(
  ifindex: number,
  program: BpfProgram,
  options: { mode: XdpMode; replace?: BpfProgram; onlyIfNone?: boolean },
): void;
export function xdpDetach(ifindex: number, mode: XdpMode): void;
/** The attached program's id, 0 for none. */
export function xdpQuery(ifindex: number, mode: XdpMode): number;
/** Attaches a program to xlb's filter on the interface's tc egress (clsact) hook, replacing the one there. */
export function tcAttach(ifindex: number, program: BpfProgram): void;
/** Removes xlb's tc egress filter; false when there was none. */
export function tcDetach(ifindex: number): boolean;
/** The program id of xlb's tc egress filter, 0 for none. */
export function tcQuery(ifindex: number): number;
/** Removes the interface's clsact qdisc and every filter on it; false when there was none. */
export function tcHookDestroy(ifindex: number): boolean;
/** The preference (priority) of xlb's tc egress filter: filters at a lower one run before it. */
export const tcPriority: number;
/** A program attached at an interface's tcx hook; name "" when it went away since the query. */
export interface TcxProgram {
  id: number;
  name: string;
}
/** The programs at the interface's tcx hook, in the order they run (all before any clsact filter); [] on a kernel without tcx. */
export function tcxQuery(ifindex: number, direction: 'ingress' | 'egress'): TcxProgram[];
export function ifNameToIndex(name: string): number;
export function possibleCpus(): number;
/**
 * Runs fn with the calling thread in the network namespace at `path` (e.g.
 * /run/netns/NAME) and returns to the original namespace afterwards, even if fn throws.
 */
export function inNetns<T>(path: string, fn: () => T): T;
/**
 * Opens (creating, mode 0600) the file at `path` and takes an exclusive flock on it
 * without waiting; returns the descriptor. The kernel releases the lock when the
 * descriptor is closed, however the process ends. Throws a BpfError with code
 * EAGAIN when another open file holds the lock.
 */
export function lockFile(path: string): number;
/** Closes a descriptor from lockFile (releasing its lock). */
export function closeFd(fd: number): void;
