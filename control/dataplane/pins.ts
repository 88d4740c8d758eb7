/**
 * The pin directory: is it on bpffs, which pins in it are xlb's (by name), and
 * removing those — only those — when a start fails or `xlb down` / `xlb decap --remove`
 * clears it. Never a recursive removal: anything else in the directory stays.
 */
import { mkdirSync, readdirSync, rmdirSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAPS } from './codec.js';
import { removeStalePins } from './dataplane.js';

export const BPF_FS_MAGIC = 0xcafe4a11;
const BPFFS_ROOT = '/sys/fs/bpf';

const { decapAddresses, decapCounters, ...balancerMaps } = MAPS;
/** The balancer's pins (what `xlb serve` makes). */
export const BALANCER_PINS: readonly string[] = Object.values(balancerMaps);
/** xlb_decap's pins (what `xlb decap` makes). */
export const DECAP_PINS: readonly string[] = [decapAddresses, decapCounters];

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** The directory itself or its nearest ancestor that exists. */
function nearestExisting(path: string): string {
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      statSync(dir);
      return dir;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT' || dirname(dir) === dir) throw error;
    }
  }
}

/** The name of the network namespace under /run/netns this process runs in, if any. */
function namedNetns(): string | null {
  try {
    const own = statSync('/proc/self/ns/net').ino;
    return readdirSync('/run/netns').find((name) => statSync(`/run/netns/${name}`).ino === own) ?? null;
  } catch {
    return null;
  }
}

/**
 * Throws, saying how to fix it, unless `dir` (or the nearest ancestor that exists,
 * where it will be made) is on bpffs. Run before anything is created: pins elsewhere
 * fail, and Node's recursive mkdir loops forever under a /sys that `ip netns exec`
 * remounted.
 */
export function checkBpffs(dir: string, option = '--bpffs'): void {
  const existing = nearestExisting(dir);
  if (statfsSync(existing).type === BPF_FS_MAGIC) return;
  if (dir === BPFFS_ROOT || dir.startsWith(`${BPFFS_ROOT}/`)) {
    const netns = namedNetns();
    throw new Error(
      `${option} ${dir}: bpffs is not mounted at ${BPFFS_ROOT}: mount -t bpf bpf ${BPFFS_ROOT}` +
        `\n  (ip netns exec remounts /sys and hides bpffs: use nsenter --net=/run/netns/${netns ?? 'NAME'} instead)`,
    );
  }
  throw new Error(`${option} ${dir}: ${existing} is not on bpffs: pins need a directory under ${BPFFS_ROOT} (or another bpffs mount)`);
}

/**
 * Makes `dir` and its missing parents one at a time (mode 0700), so a failure is an
 * error rather than a retry; returns the directories it made, outermost first.
 */
export function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let at = dir; !statSync(at, { throwIfNoEntry: false }); at = dirname(at)) missing.unshift(at);
  for (const at of missing) mkdirSync(at, { mode: 0o700 });
  return missing;
}

/** Removes the directory if it is empty (and not a mount point); true if it did. */
function removeIfEmpty(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    if (['ENOTEMPTY', 'ENOENT', 'EBUSY'].includes(errorCode(error) ?? '')) return false;
    throw error;
  }
}

/**
 * Unpins `names` and xlb's pins of other ABI versions from `dir`, then removes `dir`
 * if nothing else is left in it. Returns the pins removed and whether `dir` went too.
 */
export function removePins(dir: string, names: readonly string[]): { removed: string[]; removedDir: boolean } {
  if (!statSync(dir, { throwIfNoEntry: false })) return { removed: [], removedDir: false };
  const removed = removeStalePins(dir);
  for (const name of names) {
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
  }
  return { removed, removedDir: removeIfEmpty(dir) };
}

/**
 * What a start adds to a pin directory, so that a failed start can take exactly that
 * back: the balancer pins that were not there before, and the directories it made.
 * Pins that were there (a running data plane's) stay as they are.
 */
export class PinDirectoryStart {
  private constructor(
    private readonly dir: string,
    private readonly before: ReadonlySet<string>,
    private readonly madeDirs: readonly string[],
  ) {}

  /** Records the directory's pins and makes it if missing. */
  static begin(dir: string): PinDirectoryStart {
    const before = new Set(statSync(dir, { throwIfNoEntry: false }) ? readdirSync(dir) : []);
    return new PinDirectoryStart(dir, before, makeDirs(dir));
  }

  /** Removes the balancer pins this start made, then the directories it made if empty. */
  rollback(): void {
    for (const name of BALANCER_PINS) {
      if (this.before.has(name)) continue;
      try {
        unlinkSync(join(this.dir, name));
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
    }
    for (const dir of [...this.madeDirs].reverse()) if (!removeIfEmpty(dir)) break;
  }
}
