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
import type { ApiEndpoint } from '../net/endpoint.js';

export const LOCK_DIR = '/run/xlb/locks';

/** Something one daemon owns: `name` is what an operator reads, `key` identifies it. */
export interface Resource {
  name: string;
  key: string;
}

/** The longest prefix of `path` that exists, and the components after it (which may not exist yet). */
function existingPrefix(path: string): { at: string; rest: string[] } {
  const rest: string[] = [];
  let at = resolve(path);
  while (!statSync(at, { throwIfNoEntry: false })) {
    rest.unshift(basename(at));
    at = dirname(at);
  }
  return { at, rest };
}

/** `path` with the symlinks of its longest existing prefix resolved. */
function resolvedPath(path: string): string {
  const { at, rest } = existingPrefix(path);
  return join(realpathSync(at), ...rest);
}

/**
 * What `path` names however it is spelled: the device and inode of its longest
 * existing prefix (a symlink or a bind mount of it reaches the same one), then the
 * components that do not exist yet.
 */
function pathIdentity(path: string): string {
  const { at, rest } = existingPrefix(path);
  const { dev, ino } = statSync(at);
  return [`${dev}:${ino}`, ...rest].join('/');
}

/** A file xlb replaces by rename (state, socket) is known by its directory's identity and its name. */
const fileIdentity = (path: string) => `${pathIdentity(dirname(resolve(path)))}/${basename(path)}`;

/** A pin directory by its path and by its identity (the directory's own once it exists: see Locks.add). */
export function pinDirResources(dir: string): Resource[] {
  const name = resolvedPath(dir);
  return [
    { name, key: `bpffs ${name}` },
    { name, key: `bpffs id ${pathIdentity(dir)}` },
  ];
}

function stateFileResources(file: string): Resource[] {
  const name = resolvedPath(file);
  return [
    { name, key: `state ${name}` },
    { name, key: `state id ${fileIdentity(file)}` },
  ];
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

function apiSocketResources(path: string): Resource[] {
  const resolved = resolvedPath(path);
  const name = `API socket ${resolved}`;
  return [
    { name, key: `api ${resolved}` },
    { name, key: `api id ${fileIdentity(path)}` },
  ];
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
  /** Locks more resources (those already held are skipped), all or none. */
  add(resources: readonly Resource[]): void;
  release(): void;
}

interface HeldLock {
  fd: number;
  path: string;
}

const lockPath = (dir: string, resource: Resource) =>
  join(dir, `${createHash('sha256').update(resource.key).digest('hex').slice(0, 32)}.lock`);

function readHolder(path: string): LockHolder | null {
  try {
    const m = /^(\d+) (.+)\n/.exec(readFileSync(path, 'utf8'));
    return m ? { pid: Number(m[1]), command: m[2]! } : null;
  } catch {
    // Gone or unreadable: the lock is held, by whom is unknown.
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
  const held = new Map<string, HeldLock>();
  const add = (more: readonly Resource[]) => {
    const added: HeldLock[] = [];
    try {
      for (const resource of more) {
        if (held.has(resource.key)) continue;
        const lock = lockOne(dir, resource, command);
        held.set(resource.key, lock);
        added.push(lock);
      }
    } catch (error) {
      for (const lock of added) releaseOne(lock);
      for (const [key, lock] of held) if (added.includes(lock)) held.delete(key);
      throw error;
    }
  };
  add(resources);
  return {
    add,
    release() {
      for (const lock of held.values()) releaseOne(lock);
      held.clear();
    },
  };
}

/** What `xlb serve` owns: its data plane (pin directory, interface), its state file and its API socket, if it has them. */
export function daemonResources(options: { bpffs: string; iface: string; state?: string | undefined; api?: ApiEndpoint }): Resource[] {
  return [
    ...pinDirResources(options.bpffs),
    ...interfaceResources(options.iface),
    ...(options.state ? stateFileResources(options.state) : []),
    ...(options.api?.kind === 'unix' ? apiSocketResources(options.api.path) : []),
  ];
}
