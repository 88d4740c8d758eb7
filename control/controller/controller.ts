/**
 * The daemon's core: owns the desired state, applies every change to the data plane
 * and the state file as one step (or not at all), follows health and neighbour
 * changes, and publishes events. Everything here runs on the event loop without
 * awaiting between reading and writing state, so concurrent requests serialise.
 */
import { EventEmitter } from 'node:events';
import type { HealthChange } from '../health/checker.js';
import { planVip, type VipPlan, withSlots } from '../reconciler/plan.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { deleteBackend, deleteVip, findVip, putBackend, putVip } from '../state/desired.js';
import { conflict, notFound, XlbError } from '../state/errors.js';
import { type HostAddresses, hostAddressProblem, type HostConflict, hostConflicts } from '../state/invariants.js';
import type { BackendSpec, StateFile, StoredBackend, StoredVip, VipKey, VipSpec } from '../state/schema.js';
import { vipKeyText } from '../state/schema.js';
import type { VersionedState } from '../state/state-store.js';
import { type BackendPatch, patchBackend } from './backend-patch.js';
import { configEvent, healthEvent } from './event-shapes.js';
import { EventHistory } from './event-history.js';
import { InternalErrors } from './internal-errors.js';
import { announceablePrefixes } from './prefixes.js';
import { PROBE_REPAIR_MS, repairProbeEntries } from './probe-repair.js';
import { Traffic } from './rates.js';
import { FLOOD_TICK_MS, FloodWatch } from './flood.js';
import type { ControllerOptions, ProbeOrigin } from './options.js';
import { probeHolds } from './probe-holds.js';
import {
  backendAddresses,
  type BackendCheck,
  checkedBackend,
  healthKey,
  parseHealthKey,
  syncChecks,
  vipsWithBackendAt,
  vipTexts,
} from './targets.js';
import { type ConfigChange, type NewEvent, type StatsView, type StatusView, type VipView, vipView, type XlbEvent } from './views.js';

export const NEIGHBOUR_REFRESH_MS = 2000;
export const STATS_TICK_MS = 1000;
/** Rate windows go on this long after the last read of /v1/stats. */
export const STATS_IDLE_MS = 30_000;
/** Who asks for a change, for its event; null: this process. */
type Client = ConfigChange['by'];

/** Attempts at a change when other writers keep winning the compare-and-swap. */
const CHANGE_ATTEMPTS = 20;
/** Up to this long (ms, random) between attempts, so racing writers spread out. */
const RETRY_JITTER_MS = 20;

export class Controller extends EventEmitter<{ event: [XlbEvent]; applied: []; checked: [BackendCheck] }> {
  private state: StateFile;
  private revision: bigint;
  /** Changes and remote updates run one at a time, in order. */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly reconciler: Reconciler;
  /** VIP id -> its current plan, in state order. */
  private plans = new Map<number, VipPlan>();
  private timers: NodeJS.Timeout[] = [];
  private readonly traffic: Traffic;
  readonly flood: FloodWatch;
  readonly startedAt = Date.now();
  readonly errors: InternalErrors;
  readonly history: EventHistory;
  private link: { attached: boolean; reason: string | null } = { attached: false, reason: 'not attached yet' };
  /** The host conflicts of the last state and host reading they were computed for. */
  private conflicts: { state: StateFile; host: HostAddresses; list: HostConflict[] } | null = null;
  applied = false;

  constructor(
    private readonly options: ControllerOptions,
    initial: VersionedState,
  ) {
    super();
    this.errors = options.errors ?? new InternalErrors();
    this.history = new EventHistory(options.log);
    this.state = initial.state;
    this.revision = initial.revision;
    this.reconciler = new Reconciler(options.dp);
    this.flood = new FloodWatch({ ...options, plans: () => this.plans.values(), publish: (event) => this.publish(event) });
    this.traffic = new Traffic({
      dp: options.dp,
      plans: () => this.plans.values(),
      tickMs: STATS_TICK_MS,
      idleMs: STATS_IDLE_MS,
      following: () => this.listenerCount('event') > 0,
      onWindow: (stats) => this.emit('event', { type: 'stats', ...stats }),
      onError: (error) => this.errors.record('stats', error, { op: 'read rates' }),
      flood: this.flood,
    });
    // The event stream's listeners get a window each tick.
    (this as EventEmitter).on('newListener', (name: string | symbol) => {
      if (name === 'event') this.traffic.keepGoing();
    });
    options.health.holdProbes(probeHolds(this.options, () => this.plans));
    options.health.on('change', (change) => this.onHealthChange(change));
    // A probe port another process holds: its check moves to a free one; a port it lets go is given out again.
    options.health.on('portBusy', () => syncChecks(this.options, this.state));
    options.health.busyPorts.on('freed', () => this.errors.guard('dataplane', () => syncChecks(this.options, this.state)));
    options.health.on('checked', ({ key, ...check }) => {
      const target = checkedBackend(this.state, key);
      if (target) this.emit('checked', { ...target, ...check });
    });
  }

  /** First apply (backends restored from the state file count as up), then timers. */
  async start(): Promise<void> {
    await this.options.neighbours.refresh(backendAddresses(this.state));
    syncChecks(this.options, this.state, 'up');
    this.reconcile();
    this.errors.guard('stats', () => this.flood.sample()); // the flow counters' baseline: they count from here, VIPs added later from 0
    this.applied = true;
    await this.options.store.watch(
      (update) => this.errors.guard('store', () => this.serialized(() => this.adoptRemote(update))),
      (error, context) => this.errors.record('store', error, { store: this.options.store.description, ...context }),
    );
    this.timers.push(setInterval(() => void this.refreshNeighbours(), NEIGHBOUR_REFRESH_MS));
    this.timers.push(setInterval(() => this.errors.guard('stats', () => this.flood.sample()), FLOOD_TICK_MS));
    this.timers.push(
      setInterval(() => this.errors.guard('dataplane', () => repairProbeEntries(this.options.dp, this.errors)), PROBE_REPAIR_MS),
    );
    const host = this.options.host;
    if (host) this.timers.push(setInterval(() => this.errors.guard('host', () => host.refresh()), NEIGHBOUR_REFRESH_MS));
  }

  stop(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    this.traffic.stop();
    this.options.health.close();
  }

  get attached(): boolean {
    return this.link.attached;
  }

  /** Whether the balancer runs on the interface, and why not; a change is an event. */
  setAttached(attached: boolean, reason: string | null): void {
    if (this.link.attached === attached && this.link.reason === reason) return;
    this.link = { attached, reason };
    this.publish({ type: 'link', iface: this.options.info.iface, attached, reason });
  }

  /** The LB's sources changed (the daemon follows its interface): via-vip checks bind the new ones, held ones are asked again. */
  setProbeOrigin(origin: ProbeOrigin): void {
    this.options.probeOrigin = origin;
    syncChecks(this.options, this.state);
    this.options.health.release();
  }

  /** Numbers, keeps and logs the event, and sends it to the listeners. */
  publish(event: NewEvent): void {
    this.emit('event', this.history.record(event));
  }

  // ---- reads ---------------------------------------------------------------

  vips(): VipView[] {
    return [...this.plans.values()].map((plan) => this.view(plan));
  }

  vip(key: VipKey): VipView {
    const stored = findVip(this.state, key);
    const plan = stored && this.plans.get(stored.id);
    if (!plan) throw notFound(`VIP ${vipKeyText(key)}`);
    return this.view(plan);
  }

  status(): StatusView {
    const backends = [...this.plans.values()].flatMap((p) => p.backends);
    return {
      version: this.options.info.version,
      interface: this.options.info.iface,
      xdpMode: this.options.info.xdpMode,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      attached: this.attached,
      attachReason: this.link.reason,
      ready: this.attached && this.applied,
      warnings: [...(this.options.warnings?.() ?? []), ...(this.link.attached && this.link.reason ? [this.link.reason] : [])],
      conflicts: this.hostConflicts(),
      errors: this.errors.list(),
      counts: {
        vips: this.plans.size,
        backends: backends.length,
        backendsInRing: backends.filter((b) => b.inRing).length,
        backendsHealthy: backends.filter((b) => b.health === 'up').length,
      },
    };
  }

  /** Stored records the host's addresses now rule out (the host changed since they were accepted); recomputed only when the state or the host did. */
  hostConflicts(): HostConflict[] {
    const host = this.options.host?.current;
    if (!host) return [];
    if (this.conflicts?.state !== this.state || this.conflicts.host !== host)
      this.conflicts = { state: this.state, host, list: hostConflicts(this.state, host) };
    return this.conflicts.list;
  }

  /** Counters from the maps now, with rates over the last completed window (none while nobody reads rates). */
  stats(): StatsView {
    return this.traffic.view();
  }

  /** Counters from the maps now, with rates over a completed window: waits for one (a tick) when none is running. */
  ratedStats(): Promise<StatsView> {
    return this.traffic.read();
  }

  // ---- writes --------------------------------------------------------------

  async putVip(key: VipKey, spec: VipSpec, by: Client = null): Promise<{ created: boolean; vip: VipView }> {
    this.checkHostAddress(key.address, 'VIP');
    const { created } = await this.change((state) => putVip(state, key, spec, this.options.limits), { action: 'vip.put', vip: key, by });
    return { created, vip: this.vip(key) };
  }

  async deleteVip(key: VipKey, by: Client = null): Promise<void> {
    await this.change((state) => ({ state: deleteVip(state, key) }), { action: 'vip.delete', vip: key, by });
  }

  async putBackend(key: VipKey, address: string, spec: BackendSpec, by: Client = null): Promise<{ created: boolean; vip: VipView }> {
    this.checkHostAddress(address, 'backend');
    const change = { action: 'backend.put', vip: key, backend: address, by } as const;
    const { created } = await this.change((state) => putBackend(state, key, address, spec, this.options.limits), change);
    if (created) void this.refreshNeighbours();
    return { created, vip: this.vip(key) };
  }

  async patchBackend(key: VipKey, address: string, patch: BackendPatch, by: Client = null): Promise<VipView> {
    this.checkHostAddress(address, 'backend');
    const change = { action: 'backend.patch', vip: key, backend: address, by } as const;
    await this.change((state) => patchBackend(state, key, address, patch, this.options.limits), change);
    return this.vip(key);
  }

  async deleteBackend(key: VipKey, address: string, by: Client = null): Promise<void> {
    const change = { action: 'backend.delete', vip: key, backend: address, by } as const;
    await this.change((state) => ({ state: deleteBackend(state, key, address) }), change);
  }

  /** 409: the address is valid, but this host's own addresses and prefixes rule it out. */
  private checkHostAddress(address: string, role: 'VIP' | 'backend'): void {
    const problem = this.options.host && hostAddressProblem(address, role, this.options.host.current);
    if (problem) throw conflict(problem);
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serial.then(work, work);
    // The caller hears of a failure through `run`; the next work runs regardless.
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * One change, in which only the VIP `event.vip` differs: applied to the data plane,
   * then saved with compare-and-swap. If another writer saved first, the data plane
   * goes back, the newer state is adopted and the change is made again on it. Any
   * other failure puts both back: a rejected change changes nothing.
   */
  private change<T extends { state: StateFile }>(mutate: (state: StateFile) => T, event: ConfigChange): Promise<T> {
    const key = event.vip;
    return this.serialized(async () => {
      for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        const previous = this.state;
        const result = mutate(previous);
        const scope = new Set([findVip(previous, key)?.id, findVip(result.state, key)?.id].filter((id) => id !== undefined));
        this.applyState(result.state, previous, scope);
        let saved: bigint | null;
        try {
          saved = await this.options.store.save(result.state, this.revision);
        } catch (error) {
          this.revertState(previous, scope);
          throw new XlbError(
            503,
            'store_unavailable',
            `change not saved to the ${this.options.store.description}: ${(error as Error).message}`,
          );
        }
        if (saved === null) {
          this.revertState(previous, scope);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * RETRY_JITTER_MS));
          await this.adoptRemote(await this.options.store.load());
          continue;
        }
        this.revision = saved;
        this.publish(configEvent(previous, result.state, event));
        return result;
      }
      throw conflict(`the desired state kept changing under this request (${CHANGE_ATTEMPTS} attempts); try again`);
    });
  }

  /** Makes `next` the state and applies `scope`; on a data-plane failure goes back to `previous` and throws 503. */
  private applyState(next: StateFile, previous: StateFile, scope: ReadonlySet<number>): void {
    this.state = next;
    syncChecks(this.options, this.state);
    try {
      this.reconcile(scope);
    } catch (error) {
      this.revertState(previous, scope);
      throw new XlbError(503, 'dataplane_unavailable', `change not applied: ${(error as Error).message}`);
    }
  }

  private revertState(previous: StateFile, scope: ReadonlySet<number>): void {
    this.state = previous;
    syncChecks(this.options, this.state);
    try {
      this.reconcile(scope);
    } catch (error) {
      // the data plane is gone; /readyz reports it
      this.applied = false;
      this.errors.record('dataplane', error, { op: 'revert a failed change', vips: vipTexts(previous, scope) });
    }
  }

  /** A state another writer saved (etcd): take it if newer, apply it all. */
  private async adoptRemote(update: VersionedState): Promise<void> {
    if (update.revision <= this.revision) return;
    this.state = update.state;
    this.revision = update.revision;
    syncChecks(this.options, this.state);
    this.reconcileQuietly({ after: 'remote state', revision: update.revision.toString() });
    this.publish({ type: 'config', action: 'sync', revision: update.revision.toString() });
  }

  /** Re-plans and applies the VIPs in `scope` (all when omitted). */
  private reconcile(scope?: ReadonlySet<number>): void {
    const { health, neighbours } = this.options;
    const observations = {
      health: (vip: StoredVip, backend: StoredBackend) => health.status(healthKey(vip, backend))?.health ?? 'unknown',
      mac: (address: string) => neighbours.mac(address),
    };
    const plans = new Map<number, VipPlan>();
    for (const vip of this.state.vips) {
      const current = this.plans.get(vip.id);
      plans.set(vip.id, !scope || scope.has(vip.id) || !current ? planVip(vip, observations) : current);
    }
    this.reconciler.apply(plans.values(), scope);
    for (const [id, plan] of plans)
      if (plan !== this.plans.get(id)) plans.set(id, withSlots(plan, this.reconciler.slots(id), this.options.dp.ringSize));
    this.plans = plans;
    // Probes held for a record that was not written yet go now that it may be.
    this.options.health.release();
    this.emit('applied');
  }

  /** VIP prefixes to announce: none while not attached. */
  announceable(): string[] {
    return this.attached ? announceablePrefixes(this.plans.values()) : [];
  }

  private onHealthChange(change: HealthChange): void {
    const { vipId, backendId } = parseHealthKey(change.key);
    const vip = this.state.vips.find((v) => v.id === vipId);
    const backend = vip?.backends.find((b) => b.id === backendId);
    if (!vip || !backend) return;
    this.reconcileQuietly({ after: 'health change', vip: vipKeyText(vip), backend: backend.address, to: change.to }, new Set([vip.id]));
    this.publish(healthEvent(vip, backend, change));
  }

  private async refreshNeighbours(): Promise<void> {
    const addresses = backendAddresses(this.state);
    try {
      const changed = await this.options.neighbours.refresh(addresses);
      if (changed.size > 0)
        this.reconcileQuietly({ after: 'neighbour change', backends: [...changed] }, vipsWithBackendAt(this.state, changed));
    } catch (error) {
      // the next refresh tries again
      this.errors.record('neighbours', error, { op: 'resolve backend MACs', backends: addresses.length });
    }
  }

  /** Reconciles after `cause` changed; a failure shows in /readyz and the internal errors, not as a crash. */
  private reconcileQuietly(cause: Record<string, unknown>, scope?: ReadonlySet<number>): void {
    try {
      this.reconcile(scope);
      this.applied = true;
    } catch (error) {
      this.applied = false;
      this.errors.record('dataplane', error, { op: 'reconcile', ...cause, vips: scope ? vipTexts(this.state, scope) : 'all' });
    }
  }

  private view(plan: VipPlan): VipView {
    return vipView(plan, (backend) => this.options.health.status(healthKey(plan.vip, backend)));
  }

  /** For tests and tools: the stored VIP (ids included). */
  storedVip(key: VipKey): StoredVip | undefined {
    return findVip(this.state, key);
  }

  snapshot(): StateFile {
    return structuredClone(this.state);
  }
}
