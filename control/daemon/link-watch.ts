/**
 * Keeps "attached" true to what runs on the interface: re-checked on every
 * `ip monitor link` event and every second (a replaced program or a tc change raises
 * no link event). A new interface of the same name without a program gets ours again,
 * with the same maps; an XDP program that is not ours is reported and left alone; one
 * that disappears from the interface we attached to was detached on purpose and is not
 * put back. xlb's tc egress filter (the probe program) is part of "attached": when it
 * or its clsact qdisc is gone, or another program took its place, via-vip health checks
 * fail for a reason of the LB's own, so it is attached again at once and reported.
 * Another egress filter or a tcx egress program that runs before xlb's is reported as
 * the reason while attached (egress-order.ts): the balancer works, but via-vip probes
 * may not reach xlb_probe.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  type BpfError,
  BpfProgram,
  ifNameToIndex,
  tcAttach,
  tcPriority,
  tcQuery,
  tcxQuery,
  type TcxProgram,
  xdpAttach,
  xdpQuery,
  type XdpMode,
} from '@xlb/native';
import { EgressOrder } from './egress-order.js';
import { tcFilterRows, type TcFilterRow } from './tc-filters.js';

export const LINK_RECHECK_MS = 1000;

/** What runs on the interface, compared with our program. */
export type LinkObservation =
  | { kind: 'ours'; ifindex: number }
  | { kind: 'gone' }
  | { kind: 'empty'; ifindex: number }
  | { kind: 'foreign'; ifindex: number; programId: number; name: string }
  /** Our XDP program runs, but xlb's tc egress filter is missing (0) or runs another program. */
  | { kind: 'no-probe-filter'; ifindex: number; filterProgramId: number };

/** The kernel as the observation sees it (the native binding in the daemon). */
export interface LinkHost {
  ifindex(name: string): number | null;
  /** The XDP program's id on the interface, 0 for none. */
  programId(ifindex: number): number;
  programName(id: number): string;
  /** The program id of xlb's tc egress filter, 0 for none (or no clsact qdisc). */
  probeFilterId(ifindex: number): number;
  /** The interface's egress filters in the order they run. */
  egressFilters(iface: string): Promise<TcFilterRow[]>;
  /** The programs at the interface's tcx egress hook, which run before every egress filter. */
  tcxEgressPrograms(ifindex: number): TcxProgram[];
}

/** Our programs' ids: the XDP one, and the tc probe one when the watch keeps it attached. */
interface OurPrograms {
  xdp: number;
  probe: number | null;
}

function observeLink(iface: string, ours: OurPrograms, host: LinkHost): LinkObservation {
  const ifindex = host.ifindex(iface);
  if (ifindex === null) return { kind: 'gone' };
  const programId = host.programId(ifindex);
  if (programId === 0) return { kind: 'empty', ifindex };
  if (programId !== ours.xdp) return { kind: 'foreign', ifindex, programId, name: host.programName(programId) };
  const filterProgramId = ours.probe === null ? null : host.probeFilterId(ifindex);
  if (filterProgramId !== null && filterProgramId !== ours.probe) return { kind: 'no-probe-filter', ifindex, filterProgramId };
  return { kind: 'ours', ifindex };
}

interface LinkVerdict {
  attached: boolean;
  reason: string | null;
  /** The interface is a new one with no program: attach ours. */
  reattach: boolean;
  /** xlb's tc egress filter is not in place: attach it again. */
  reattachProbe: boolean;
}

function linkVerdict(iface: string, seen: LinkObservation, attachedIfindex: number | null): LinkVerdict {
  const verdict = (attached: boolean, reason: string | null, reattach = false): LinkVerdict => ({
    attached,
    reason,
    reattach,
    reattachProbe: false,
  });
  switch (seen.kind) {
    case 'ours':
      return verdict(true, null);
    case 'gone':
      return verdict(false, `interface ${iface} is gone`);
    case 'empty':
      return seen.ifindex === attachedIfindex
        ? verdict(false, `no XDP program on ${iface}: detached by someone else; restart xlb serve to attach again`)
        : verdict(false, `interface ${iface} is back without a program`, true);
    case 'foreign':
      return verdict(false, `${iface} runs XDP program ${seen.name} (id ${seen.programId}), not this daemon's; leaving it`);
    case 'no-probe-filter': {
      const what = seen.filterProgramId
        ? `xlb's tc egress filter on ${iface} runs program id ${seen.filterProgramId}, not this daemon's xlb_probe`
        : `xlb's tc egress filter on ${iface} is gone`;
      return { ...verdict(false, `${what}: via-vip health checks cannot pass`), reattachProbe: true };
    }
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
    probeFilterId: (ifindex) => tcQuery(ifindex),
    egressFilters: (iface) => tcFilterRows(iface, 'egress'),
    tcxEgressPrograms: (ifindex) => tcxQuery(ifindex, 'egress'),
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
  /** The tc egress probe program: kept attached as xlb's egress filter, and attached again beside the XDP program on a new interface. */
  probeProgram?: BpfProgram;
  ifindex: number;
  /** `reason`: why not attached; while attached, the egress filters that run before xlb's, or null. */
  report(attached: boolean, reason: string | null): void;
  onError(error: unknown): void;
  /** Runs after each check (every second and on each link or address event): the LB's sources follow the interface's addresses. */
  onCheck?(): void;
  host?: LinkHost;
}

/** The message of what `attach` throws, null when it succeeds. */
function attachError(attach: () => void): string | null {
  try {
    attach();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

export class LinkWatch {
  private readonly host: LinkHost;
  private attachedIfindex: number | null;
  private readonly timer: NodeJS.Timeout;
  private readonly order: EgressOrder;
  private monitor: ChildProcess | null = null;
  private pending = false;
  private closed = false;

  constructor(private readonly options: LinkWatchOptions) {
    this.host = options.host ?? nativeLinkHost(options.mode);
    this.attachedIfindex = options.ifindex;
    this.order = new EgressOrder(
      (iface) => this.host.egressFilters(iface),
      (ifindex) => this.host.tcxEgressPrograms(ifindex),
      () => this.check(),
      (error) => options.onError(error),
    );
    this.timer = setInterval(() => this.check(), LINK_RECHECK_MS);
    this.startMonitor();
    this.check();
  }

  /**
   * Observes the interface, re-attaches to a new one with no program and puts xlb's tc
   * egress filter back, reports the outcome. A filter put back is reported missing
   * first, so the event stream says what happened; one that cannot be put back stays
   * reported, with the error, and is tried again on the next check.
   */
  check(): void {
    try {
      const { iface, program, probeProgram } = this.options;
      const ours = { xdp: program.info.id, probe: probeProgram?.info.id ?? null };
      let seen = observeLink(iface, ours, this.host);
      let verdict = linkVerdict(iface, seen, this.attachedIfindex);
      if (verdict.reattach && seen.kind === 'empty') {
        // Only if still empty: a program that got there first is not replaced.
        xdpAttach(seen.ifindex, program, { mode: this.options.mode, onlyIfNone: true });
        if (probeProgram) tcAttach(seen.ifindex, probeProgram);
        seen = observeLink(iface, ours, this.host);
        verdict = linkVerdict(iface, seen, null);
      }
      if (verdict.reattachProbe && seen.kind === 'no-probe-filter' && probeProgram) {
        const { ifindex } = seen;
        const failure = attachError(() => tcAttach(ifindex, probeProgram));
        if (failure) {
          verdict = { ...verdict, reason: `${verdict.reason}; attaching it again failed: ${failure}` };
        } else {
          this.options.report(false, `${verdict.reason}; attached again`);
          seen = observeLink(iface, ours, this.host);
          verdict = linkVerdict(iface, seen, this.attachedIfindex);
        }
      }
      if (seen.kind === 'ours' || seen.kind === 'no-probe-filter') this.attachedIfindex = seen.ifindex;
      if (seen.kind === 'gone') this.attachedIfindex = null;
      if (seen.kind === 'ours' && ours.probe !== null) this.order.tick(iface, seen.ifindex, { pref: tcPriority, programId: ours.probe });
      this.options.report(verdict.attached, verdict.reason ?? this.order.ahead);
    } catch (error) {
      this.options.onError(error);
    }
    this.options.onCheck?.();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.order.close();
    this.monitor?.kill();
  }

  /** `ip monitor link address` in the daemon's namespace; killed with the daemon, however it ends. */
  private startMonitor(): void {
    const monitor = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', 'monitor', 'link', 'address'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
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
