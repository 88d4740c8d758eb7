/**
 * Backend health checks: a probe of the check's type (checks/registry.ts) every
 * interval (with ±10% jitter so checks spread out), each bounded by a timeout.
 * `rise` consecutive successes make a backend up, `fall` consecutive failures make it
 * down. A target starts 'unknown' (its first result decides) or, when restored at
 * daemon start, 'up', so a restart does not pull serving backends out of rings.
 * A probe whose path is not in place yet (holdProbes), that the LB could not send
 * (ProbeUnsent: its source address gone; ProbePortBusy: its local port another process
 * holds, `portBusy` asks for another port), or whose check the
 * allocator left waiting for a port (busyPorts.waiting: the rest are held), counts neither way
 * for a while: held longer than interval × fall (and `minHoldMs`), each tick fails with
 * the hold's reason, so a backend that never becomes reachable does not stay as it was;
 * a hold for ports other processes took keeps the health however long it lasts.
 */
import { EventEmitter } from 'node:events';
import { type CheckSpec, ProbePortBusy, ProbeUnsent } from '../checks/check-type.js';
import type { Health } from '../checks/health.js';
import type { ProbeSentAt } from '../checks/probe-stamp.js';
import { checkType } from '../checks/registry.js';
import { familyOf } from '../net/address.js';
import { BusyPorts, checkTransport } from './busy-ports.js';

export type { CheckSpec } from '../checks/check-type.js';

export interface TargetStatus {
  health: Health;
  /** Why the last check failed, or null. */
  reason: string | null;
  lastCheckedAt: number | null;
  /** How long the last check took (ms), or null before the first. */
  lastLatencyMs: number | null;
  /** The latest failed check, kept after the target recovers, or null before any failed. */
  lastFailure: { at: number; reason: string } | null;
}

export interface HealthChange {
  key: string;
  /** The path the deciding check took. */
  via: CheckSpec['via'];
  from: Health;
  to: Health;
  reason: string | null;
  /** How long the check that decided it took (ms). */
  latencyMs: number;
}

/** One finished check, whether or not it changed the target's health. */
export interface CheckResult {
  key: string;
  type: CheckSpec['type'];
  /** null: passed; otherwise why it failed. */
  reason: string | null;
  latencyMs: number;
}

/** A probe that did not leave: its local port is another process's. */
export interface PortBusy {
  key: string;
  port: number;
}

/**
 * One probe through the spec's check type: resolves to null on success or a reason on
 * failure; rejects with ProbeUnsent. With `sentAt`, a via-vip success counts only if xlb_probe sent the probe on.
 */
export function probe(spec: CheckSpec, sentAt?: ProbeSentAt): Promise<string | null> {
  const run = checkType(spec.type).probe;
  return run ? run(spec, sentAt) : Promise.resolve(null);
}

/** Why a target's probe cannot be sent yet (the path it takes is not in place), or null. */
export type ProbeHold = (key: string, spec: CheckSpec) => string | null;

interface Target {
  spec: CheckSpec;
  specKey: string;
  status: TargetStatus;
  successes: number;
  failures: number;
  timer: NodeJS.Timeout | null;
  stopped: boolean;
  /** When the ticks began to be held (ms), or null: a held target's next tick release() runs at once. */
  heldSince: number | null;
}

/** A new backend's MAC is read by the neighbour refresh within two of its 2 s ticks. */
export const MIN_HOLD_MS = 5000;

export class HealthMonitor extends EventEmitter<{ change: [HealthChange]; checked: [CheckResult]; portBusy: [PortBusy] }> {
  private readonly targets = new Map<string, Target>();
  private hold: ProbeHold = () => null;
  private sentAt: ProbeSentAt | undefined;
  /** Probe ports a probe found another process's, for the allocator to skip. */
  readonly busyPorts = new BusyPorts();

  /** `onError` hears what a probe or a change listener threw; the checks go on. */
  constructor(
    private readonly onError: (error: unknown, key: string) => void = () => {},
    private readonly minHoldMs = MIN_HOLD_MS,
  ) {
    super();
  }

  /** Starts, restarts (changed spec) and stops targets to match `wanted`. */
  sync(wanted: Map<string, CheckSpec>, initial: Health = 'unknown'): void {
    for (const [key, target] of this.targets) {
      if (!wanted.has(key)) this.stop(key, target);
    }
    for (const [key, spec] of wanted) {
      const specKey = JSON.stringify(spec);
      const existing = this.targets.get(key);
      if (existing?.specKey === specKey) continue;
      if (existing) this.stop(key, existing);
      const target: Target = {
        spec,
        specKey,
        status: {
          health: existing?.status.health ?? initial,
          reason: null,
          lastCheckedAt: null,
          lastLatencyMs: null,
          lastFailure: existing?.status.lastFailure ?? null,
        },
        successes: 0,
        failures: 0,
        timer: null,
        stopped: false,
        heldSince: null,
      };
      this.targets.set(key, target);
      this.start(key, target);
    }
  }

  /**
   * Probes `hold` gives a reason for are not sent: the reason shows as the target's,
   * its health stays, and it is asked again each interval or at release().
   */
  holdProbes(hold: ProbeHold): void {
    this.hold = hold;
  }

  /** Via-vip successes count only for probes `sentAt` (the data plane's stamps) shows xlb_probe sent on. */
  verifySentBy(sentAt: ProbeSentAt): void {
    this.sentAt = sentAt;
  }

  /** Runs now the targets whose last tick was held (their path may be in place now). */
  release(): void {
    for (const [key, target] of this.targets) {
      if (target.heldSince === null || !target.timer) continue;
      clearTimeout(target.timer);
      target.timer = null;
      this.start(key, target);
    }
  }

  status(key: string): TargetStatus | undefined {
    return this.targets.get(key)?.status;
  }

  close(): void {
    for (const [key, target] of this.targets) this.stop(key, target);
    this.busyPorts.close();
  }

  private stop(key: string, target: Target): void {
    target.stopped = true;
    if (target.timer) clearTimeout(target.timer);
    this.targets.delete(key);
  }

  private start(key: string, target: Target): void {
    this.run(key, target).catch((error) => this.onError(error, key));
  }

  /** One check and the next one scheduled, whatever the probe or a listener throws. */
  private async run(key: string, target: Target): Promise<void> {
    if (target.stopped) return;
    target.timer = null; // fired or released: release() leaves a probe that is out alone
    try {
      const held = this.hold(key, target.spec);
      if (held !== null) return this.holdTick(key, target, held);
      const portless = this.busyPorts.waiting(key);
      if (portless !== null) return this.holdTick(key, target, portless, false);
      let reason: string | null;
      const started = performance.now();
      try {
        reason = await probe(target.spec, this.sentAt);
      } catch (error) {
        if (error instanceof ProbePortBusy) return this.holdBusy(key, target, error);
        if (error instanceof ProbeUnsent) return this.holdTick(key, target, `waiting to probe: ${error.message}`);
        this.onError(error, key);
        reason = `probe failed: ${error instanceof Error ? error.message : String(error)}`;
      }
      // A hold ends with a counted result only: one the LB could not send keeps its start.
      target.heldSince = null;
      if (!target.stopped) this.record(key, target, reason, performance.now() - started);
    } finally {
      const jitter = 0.9 + Math.random() * 0.2;
      if (!target.stopped) target.timer = setTimeout(() => this.start(key, target), Math.round(target.spec.intervalMs * jitter));
    }
  }

  /** Held like a path not in place, until the allocator moves the check to another port (the next tick tries again). */
  private holdBusy(key: string, target: Target, busy: ProbePortBusy): void {
    if (target.stopped) return;
    const { spec } = target;
    this.busyPorts.add({
      family: familyOf(spec.address),
      transport: checkTransport(spec.type),
      port: busy.port,
      address: spec.localAddress ?? undefined,
    });
    this.holdTick(key, target, `waiting to probe: ${busy.message}; the check moves to another probe port`, false);
    this.emit('portBusy', { key, port: busy.port });
  }

  /**
   * A tick whose probe is not sent: not counted, or past the hold's limit a failure for
   * `reason`. A hold for probe ports other processes took never `expires`: any local
   * user can take ports, and that must not take backends down (nor BGP withdraw VIPs).
   */
  private holdTick(key: string, target: Target, reason: string, expires = true): void {
    const now = Date.now();
    target.heldSince ??= now;
    const heldMs = now - target.heldSince;
    if (!expires || heldMs < Math.max(target.spec.intervalMs * target.spec.fall, this.minHoldMs)) {
      target.status.reason = reason;
      return;
    }
    this.record(key, target, `${reason} (for ${(heldMs / 1000).toFixed(1)} s)`, 0);
  }

  private record(key: string, target: Target, reason: string | null, latencyMs: number): void {
    const { status, spec } = target;
    status.lastCheckedAt = Date.now();
    status.lastLatencyMs = latencyMs;
    status.reason = reason;
    if (reason !== null) status.lastFailure = { at: status.lastCheckedAt, reason };
    this.emit('checked', { key, type: spec.type, reason, latencyMs });
    if (reason === null) {
      target.successes++;
      target.failures = 0;
    } else {
      target.failures++;
      target.successes = 0;
    }
    const from = status.health;
    let to = from;
    if (from === 'unknown') to = reason === null ? 'up' : 'down';
    else if (from === 'down' && target.successes >= spec.rise) to = 'up';
    else if (from === 'up' && target.failures >= spec.fall) to = 'down';
    if (to !== from) {
      status.health = to;
      this.emit('change', { key, via: spec.via, from, to, reason, latencyMs });
    }
  }
}
