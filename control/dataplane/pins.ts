/**
 * The pin directory: is it on bpffs, which pins in it are xlb's (by name), which of
 * them a start can adopt, and removing those — only those — when a start fails or
 * `xlb down` / `xlb decap --remove` clears it. Never a recursive removal: anything
 * else in the directory stays.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BpfMap } from '@xlb/native';
import { MAPS } from './codec.js';
import { RING_FLAGS } from './rings.js';
import { u32Bytes } from './struct.js';

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
    // No /run/netns, or an entry vanished while read: not in a named namespace we can name.
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
 * Unpins `names` and stale xlb pins (removeStalePins) from `dir`, then removes `dir`
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
    /** The names in the directory before the start. */
    readonly before: ReadonlySet<string>,
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

const CURRENT_MAPS: ReadonlySet<string> = new Set(Object.values(MAPS));

/**
 * Unpins xlb's maps (`xlb_<map>_v<N>`) the objects do not have under that exact name:
 * a map at another layout version, or one the objects no longer have. Pins under the
 * current names stay for the load to adopt. A program still running keeps its own
 * references, so this never pulls a map from under it.
 */
export function removeStalePins(dir: string): string[] {
  const stale = existsSync(dir) ? readdirSync(dir).filter((name) => /^xlb_[a-z0-9_]+_v\d+$/.test(name) && !CURRENT_MAPS.has(name)) : [];
  for (const name of stale) rmSync(join(dir, name), { force: true });
  return stale;
}

/** A map's name without its version: xlb_flows_v5 -> xlb_flows. */
const unversioned = (name: string) => name.replace(/_v\d+$/, '');

/** Whether `replaced` (pins made afresh) holds the connection table, of any version. */
export const replacesConnectionTable = (replaced: readonly string[]): boolean =>
  replaced.map(unversioned).includes(unversioned(MAPS.flows));

/**
 * Maps whose entries hold only beside another map's: the connection table is hashed
 * with xlb_config's keys, and a VIP cache entry is valid while its generation equals
 * xlb_config's, for the VIP map it was filled from.
 */
const FOLLOWERS = [
  { leader: 'config', followers: ['flows', 'vipCache'] },
  { leader: 'vips', followers: ['vipCache'] },
] as const satisfies readonly { leader: keyof typeof MAPS; followers: readonly (keyof typeof MAPS)[] }[];

/**
 * Unpins the followers of every map whose pin is missing (unpinned as stale or of
 * another size, or gone), so the load makes them afresh together with it. Run last.
 */
export function unpinFollowersOfNewMaps(dir: string): string[] {
  const removed: string[] = [];
  for (const { leader, followers } of FOLLOWERS) {
    if (existsSync(join(dir, MAPS[leader]))) continue;
    for (const name of followers.map((follower) => MAPS[follower])) {
      if (!existsSync(join(dir, name))) continue;
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * The pinned map of rings only takes rings like its inner-map template, of the size
 * it was made for, so a daemon started with another ring size needs a fresh one. A
 * ring already in it tells the size; with none there is nothing to keep. The running
 * program keeps its own rings until the new one, applied, replaces it.
 */
export function unpinRingsOfAnotherSize(dir: string, values: number): string[] {
  const path = join(dir, MAPS.rings);
  if (!existsSync(path)) return [];
  let keep = false;
  const rings = BpfMap.fromPin(path);
  try {
    for (let vipId = 0; vipId < rings.info.maxEntries; vipId++) {
      const id = rings.lookup(u32Bytes(vipId));
      if (!id) continue;
      const ring = BpfMap.fromId(id.readUInt32LE(0));
      keep = ring.info.maxEntries === values && ring.info.flags === RING_FLAGS;
      ring.close();
      break;
    }
  } finally {
    rings.close();
  }
  if (keep) return [];
  rmSync(path, { force: true });
  return [MAPS.rings];
}

/**
 * libbpf adopts a pinned map only if it matches the definition, so a daemon started
 * with another --max-vips, --max-backends or --max-flows would fail to load ("Invalid
 * argument"). Those maps are unpinned instead and made afresh at the new size: the
 * daemon writes its whole state into them before the program that uses them replaces
 * the running one, which keeps its old maps until then. A new connection table starts
 * empty (flows re-hash once); counters in resized stats maps start from zero.
 */
export function unpinMapsOfAnotherSize(dir: string, maxEntries: Record<string, number>): string[] {
  const replaced: string[] = [];
  for (const [name, entries] of Object.entries(maxEntries)) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    const map = BpfMap.fromPin(path);
    const size = map.info.maxEntries;
    map.close();
    if (size === entries) continue;
    rmSync(path, { force: true });
    replaced.push(name);
  }
  return replaced;
}
