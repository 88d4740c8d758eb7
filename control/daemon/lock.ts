/**
 * One owner per data plane. `xlb serve` holds an exclusive flock on one file per
 * resource it owns — its pin directory, its state file, its interface, its API socket — for its whole
 * life; `xlb down` holds them while it works. The kernel drops a flock when its
 * process ends, however it ends, so a lock file left behind never blocks anyone.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fstatSync, ftruncateSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { closeFd, ifNameToIndex, lockFile, type BpfError } from '@xlb/native';
import type { ApiEndpoint } from './options.js';

export const LOCK_DIR = '/run/xlb/locks';

/** Something one daemon owns: `name` is what an operator reads, `key` identifies it. */
export interface Resource {
  name: string;
  key: string;
}

/** `path` with the symlinks of its longest existing prefix resolved (the rest may not exist yet). */
function resolvedPath(path: string): string {
  const rest: string[] = [];
  for (let at = resolve(path); ; at = dirname(at)) {
    try {
      return join(realpathSync(at), ...rest);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      rest.unshift(basename(at));
    }
  }
}

function pinDirResource(dir: string): Resource {
  const path = resolvedPath(dir);
  return { name: path, key: `bpffs ${path}` };
}

function stateFileResource(file: string): Resource {
  const path = resolvedPath(file);
  return { name: path, key: `state ${path}` };
}

/** The primary name of interface `name`, which may be one of its altnames (ip link property add … altname). */
export function primaryInterfaceName(name: string): string {
  const ifindex = ifNameToIndex(name); // fails naming the interface when there is none
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifindex: number; ifname: string }[];
  const link = links.find((l) => l.ifindex === ifindex);
  if (!link) throw new Error(`interface ${name} (index ${ifindex}) is gone`);
  return link.ifname;
}

/**
 * An interface by what it is, not by the name given: its primary name and its index
 * (a rename keeps the index, a new interface under the old name keeps the name), both
 * within this network namespace, whose inode the keys hold.
 */
function interfaceResources(iface: string): Resource[] {
  const netns = statSync('/proc/self/ns/net').ino;
  const ifname = primaryInterfaceName(iface);
  const name = `interface ${ifname}`;
  return [
    { name, key: `interface net:[${netns}] ${ifname}` },
    { name, key: `interface net:[${netns}] index ${ifNameToIndex(ifname)}` },
  ];
}

function apiSocketResource(path: string): Resource {
  const resolved = resolvedPath(path);
  return { name: `API socket ${resolved}`, key: `api ${resolved}` };
}

export interface LockHolder {
  pid: number;
  command: string;
}

export class ResourceInUse extends Error {
  constructor(
    readonly resource: Resource,
    readonly holder: LockHolder | null,
  ) {
    super(`${resource.name} is in use by ${holder ? `${holder.command} (PID ${holder.pid})` : 'another process'}`);
  }
}

export interface Locks {
  release(): void;
}

interface HeldLock {
  fd: number;
  path: string;
}

const lockPath = (dir: string, resource: Resource) => join(dir, `${createHash('sha256').update(resource.key).digest('hex').slice(0, 32)}.lock`);

function readHolder(path: string): LockHolder | null {
  try {
    const m = /^(\d+) (.+)\n/.exec(readFileSync(path, 'utf8'));
    return m ? { pid: Number(m[1]), command: m[2] } : null;
  } catch {
    return null;
  }
}

function lockOne(dir: string, resource: Resource, command: string): HeldLock {
  const path = lockPath(dir, resource);
  for (;;) {
    let fd: number;
    try {
      fd = lockFile(path);
    } catch (error) {
      if ((error as BpfError).code === 'EAGAIN') throw new ResourceInUse(resource, readHolder(path));
      throw error;
    }
    // A holder unlinks its file before letting go: a lock on a file no longer at `path` guards nothing.
    if (statSync(path, { throwIfNoEntry: false })?.ino === fstatSync(fd).ino) {
      ftruncateSync(fd);
      writeSync(fd, `${process.pid} ${command}\n${resource.name}\n`, 0);
      return { fd, path };
    }
    closeFd(fd);
  }
}

function releaseOne(lock: HeldLock): void {
  rmSync(lock.path, { force: true });
  closeFd(lock.fd);
}

/**
 * Locks every resource for `command` (e.g. "xlb serve"), all or none: throws
 * ResourceInUse, naming the holder, when one is held.
 */
export function lockResources(resources: readonly Resource[], command: string, dir = LOCK_DIR): Locks {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const unique = [...new Map(resources.map((r) => [r.key, r])).values()];
  const held: HeldLock[] = [];
  try {
    for (const resource of unique) held.push(lockOne(dir, resource, command));
  } catch (error) {
    for (const lock of held) releaseOne(lock);
    throw error;
  }
  return {
    release() {
      for (const lock of held.splice(0)) releaseOne(lock);
    },
  };
}

/** What `xlb serve` owns: its data plane (pin directory, interface), its state file and its API socket, if it has them. */
export function daemonResources(options: { bpffs: string; iface: string; state?: string; api?: ApiEndpoint }): Resource[] {
  return [
    pinDirResource(options.bpffs),
    ...interfaceResources(options.iface),
    ...(options.state ? [stateFileResource(options.state)] : []),
    ...(options.api?.kind === 'unix' ? [apiSocketResource(options.api.path)] : []),
  ];
}
