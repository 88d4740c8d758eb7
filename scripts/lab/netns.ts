/**
 * Network namespaces for tests: creation, commands inside them, and cleanup that
 * runs even when a test fails. Names carry a per-process prefix so parallel test
 * files never collide.
 */
import { execFileSync } from 'node:child_process';
import { inNetns } from '@xlb/native';

export function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside a namespace. `ip netns exec` remounts /sys, so this is for tools that need no bpffs pins. */
export function nsRun(ns: string, command: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, command, ...args]);
}

/** Runs fn in this process with the namespace's network stack (ifindexes, XDP attach). */
export function inNamespace<T>(ns: string, fn: () => T): T {
  return inNetns(`/run/netns/${ns}`, fn);
}

export class Namespaces {
  readonly prefix: string;
  private readonly created: string[] = [];

  constructor(tag: string) {
    this.prefix = `xlbt-${tag}-${process.pid % 100000}`;
  }

  name(short: string): string {
    return `${this.prefix}-${short}`;
  }

  /** Creates a namespace, by full name (from name()) or short name. */
  create(nameOrShort: string): string {
    const ns = nameOrShort.startsWith(this.prefix) ? nameOrShort : this.name(nameOrShort);
    sh('ip', ['netns', 'add', ns]);
    this.created.push(ns);
    nsRun(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Deletes every namespace this object made (and with them their links). */
  cleanup(): void {
    for (const ns of this.created.splice(0).reverse()) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}
