/**
 * Keeps "attached" true to what runs on the interface: re-checked on every
 * `ip monitor link` event and every second (a replaced program raises no link event).
 * A new interface of the same name without a program gets ours again, with the same
 * maps; a program that is not ours is reported and left alone; one that disappears
 * from the interface we attached to was detached on purpose and is not put back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type BpfError, BpfProgram, ifNameToIndex, tcAttach, xdpAttach, xdpQuery, type XdpMode } from '@xlb/native';

export const LINK_RECHECK_MS = 1000;

/** What runs on the interface, compared with our program. */
export type LinkObservation =
  | { kind: 'ours'; ifindex: number }
  | { kind: 'gone' }
  | { kind: 'empty'; ifindex: number }
  | { kind: 'foreign'; ifindex: number; programId: number; name: string };

/** The kernel as the observation sees it (the native binding in the daemon). */
export interface LinkHost {
  ifindex(name: string): number | null;
  /** The XDP program's id on the interface, 0 for none. */
  programId(ifindex: number): number;
  programName(id: number): string;
}

function observeLink(iface: string, ourId: number, host: LinkHost): LinkObservation {
  const ifindex = host.ifindex(iface);
  if (ifindex === null) return { kind: 'gone' };
  const programId = host.programId(ifindex);
  if (programId === 0) return { kind: 'empty', ifindex };
  if (programId === ourId) return { kind: 'ours', ifindex };
  return { kind: 'foreign', ifindex, programId, name: host.programName(programId) };
}

/** Attached or not and why; `reattach` when the interface is a new one with no program. */
function linkVerdict(
  iface: string,
  seen: LinkObservation,
  attachedIfindex: number | null,
): { attached: boolean; reason: string | null; reattach: boolean } {
  switch (seen.kind) {
    case 'ours':
      return { attached: true, reason: null, reattach: false };
    case 'gone':
      return { attached: false, reason: `interface ${iface} is gone`, reattach: false };
    case 'empty':
      return seen.ifindex === attachedIfindex
        ? {
            attached: false,
            reason: `no XDP program on ${iface}: detached by someone else; restart xlb serve to attach again`,
            reattach: false,
          }
        : { attached: false, reason: `interface ${iface} is back without a program`, reattach: true };
    case 'foreign':
      return {
        attached: false,
        reason: `${iface} runs XDP program ${seen.name} (id ${seen.programId}), not this daemon's; leaving it`,
        reattach: false,
      };
  }
}

function nativeLinkHost(mode: XdpMode): LinkHost {
  return {
    ifindex(name) {
      try {
        return ifNameToIndex(name);
      } catch (error) {
        // No such link (yet): the watch reports the interface as missing.
        if ((error as BpfError).code === 'ENODEV') return null;
        throw error;
      }
    },
    programId: (ifindex) => xdpQuery(ifindex, mode),
    programName(id) {
      try {
        const program = BpfProgram.fromId(id);
        try {
          return program.info.name;
        } finally {
          program.close();
        }
      } catch (error) {
        // The program went away between the query and the open: its name is lost with it.
        if ((error as BpfError).code === 'ENOENT') return 'unknown';
        throw error;
      }
    },
  };
}

export interface LinkWatchOptions {
  iface: string;
  mode: XdpMode;
  /** Our program, attached to `ifindex` when the watch starts. */
  program: BpfProgram;
  /** The tc egress probe program, attached again beside it on a new interface. */
  probeProgram?: BpfProgram;
  ifindex: number;
  report(attached: boolean, reason: string | null): void;
  onError(error: unknown): void;
  host?: LinkHost;
}

export class LinkWatch {
  private readonly host: LinkHost;
  private attachedIfindex: number | null;
  private readonly timer: NodeJS.Timeout;
  private monitor: ChildProcess | null = null;
  private pending = false;
  private closed = false;

  constructor(private readonly options: LinkWatchOptions) {
    this.host = options.host ?? nativeLinkHost(options.mode);
    this.attachedIfindex = options.ifindex;
    this.timer = setInterval(() => this.check(), LINK_RECHECK_MS);
    this.startMonitor();
    this.check();
  }

  /** Observes the interface, re-attaches to a new one with no program, reports the outcome. */
  check(): void {
    try {
      const { iface, program } = this.options;
      let seen = observeLink(iface, program.info.id, this.host);
      let verdict = linkVerdict(iface, seen, this.attachedIfindex);
      if (verdict.reattach && seen.kind === 'empty') {
        // Only if still empty: a program that got there first is not replaced.
        xdpAttach(seen.ifindex, program, { mode: this.options.mode, onlyIfNone: true });
        if (this.options.probeProgram) tcAttach(seen.ifindex, this.options.probeProgram);
        seen = observeLink(iface, program.info.id, this.host);
        verdict = linkVerdict(iface, seen, null);
      }
      if (seen.kind === 'ours') this.attachedIfindex = seen.ifindex;
      if (seen.kind === 'gone') this.attachedIfindex = null;
      this.options.report(verdict.attached, verdict.reason);
    } catch (error) {
      this.options.onError(error);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.monitor?.kill();
  }

  /** `ip monitor link` in the daemon's namespace; killed with the daemon, however it ends. */
  private startMonitor(): void {
    const monitor = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitor = monitor;
    monitor.stdout.on('data', () => {
      if (this.pending) return;
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        if (!this.closed) this.check();
      });
    });
    monitor.on('error', (error) => this.options.onError(error));
    monitor.on('exit', (code, signal) => {
      if (!this.closed)
        this.options.onError(new Error(`ip monitor link exited (${signal ?? code}); link changes are seen by the periodic re-check only`));
    });
  }
}
