/**
 * `xlb down`: detaches the balancer in whichever XDP mode it runs (never another
 * program) and its tc egress probe program (the clsact qdisc goes too once no filter
 * is left on it) and its via-vip probe routes (probe-routes.ts), removes its pins
 * (only those: the directory goes only when nothing else is left in it) and stops
 * xlb's BIRD. It refuses while a daemon owns that data
 * plane, unless forced.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { XdpMode } from '@xlb/native';
import { stopBird } from '../bgp/bird.js';
import { PROGRAMS } from '../dataplane/codec.js';
import { detachOwnProgram, detachProbeProgram } from '../dataplane/attach.js';
import { xdpModeSchema } from '../dataplane/xdp-mode.js';
import { BALANCER_PINS, checkBpffs, removePins } from '../dataplane/pins.js';
import { daemonResources, type Locks, lockResources, ResourceInUse } from './lock.js';
import { removeProbeRoutes } from './probe-routes.js';
import { removeUnusedClsact, type TcFilter } from './tc-filters.js';

export interface DownOptions {
  iface: string;
  /** Look only in this mode; by default in both. */
  xdpMode?: XdpMode;
  bpffs: string;
  birdDir?: string;
  /** Go ahead even while a daemon owns the data plane. */
  force?: boolean;
}

/** The data plane's locks for the time `down` works, or none when forced past a daemon holding them. */
function lockForDown(options: DownOptions): Locks {
  try {
    return lockResources(daemonResources(options), 'xlb down');
  } catch (error) {
    if (!(error instanceof ResourceInUse)) throw error;
    if (!options.force) throw new Error(`${error.message}: stop that daemon first (or give --force to take the data plane from under it)`);
    return { add() {}, release() {} };
  }
}

/** Detaches the balancer from `iface` (the kernel runs one XDP mode at a time); returns the mode it ran in, or null. */
function detachBalancer(iface: string, modes: readonly XdpMode[]): XdpMode | null {
  return modes.find((mode) => detachOwnProgram(iface, mode, PROGRAMS.balancer)) ?? null;
}

export interface DownResult {
  detached: XdpMode | null;
  removed: string[];
  removedDir: boolean;
  /** Whether the clsact qdisc was removed, and the filters that keep it. */
  clsact: { removed: boolean; kept: TcFilter[] };
  /** How many of xlb's via-vip probe routes out of the interface it removed (with their rules and neighbour entries). */
  probeRoutes: number;
}

export async function down(options: DownOptions): Promise<DownResult> {
  checkBpffs(options.bpffs);
  const locks = lockForDown(options);
  try {
    if (options.birdDir && existsSync(join(options.birdDir, 'bird.ctl'))) await stopBird(options.birdDir);
    const detached = detachBalancer(options.iface, options.xdpMode ? [options.xdpMode] : xdpModeSchema.options);
    detachProbeProgram(options.iface);
    const clsact = await removeUnusedClsact(options.iface);
    const probeRoutes = await removeProbeRoutes(options.iface);
    return { detached, clsact, probeRoutes, ...removePins(options.bpffs, BALANCER_PINS) };
  } finally {
    locks.release();
  }
}
