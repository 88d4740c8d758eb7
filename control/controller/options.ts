/** What the controller is built from: the data plane, store, health monitor, neighbours and host. */
import type { DataplanePort } from '../dataplane/port.js';
import type { XdpMode } from '../dataplane/xdp-mode.js';
import type { HealthMonitor } from '../health/checker.js';
import type { Limits } from '../state/desired.js';
import type { HostAddresses } from '../state/invariants.js';
import type { StateStore } from '../state/state-store.js';
import type { InternalErrors } from './internal-errors.js';
import type { EventLog } from './event-history.js';

export interface ControllerInfo {
  version: string;
  iface: string;
  xdpMode: XdpMode;
}

/** Backends' next-hop MACs, resolved on the interface (daemon/host.ts). */
export interface Neighbours {
  /** Resolves `addresses`; the addresses whose MAC changed. */
  refresh(addresses: string[]): Promise<ReadonlySet<string>>;
  mac(address: string): Buffer | null;
}

/** Where via-vip probes leave from: the XDP interface and the balancer's source address of each family (null: none). */
export interface ProbeOrigin {
  iface: string;
  v4: string | null;
  v6: string | null;
  /** Why the family's probes are held (its source is missing or not the host's), null when they are not. */
  held: { v4: string | null; v6: string | null };
}

export interface ControllerOptions {
  dp: DataplanePort;
  store: StateStore;
  limits: Limits;
  health: HealthMonitor;
  neighbours: Neighbours;
  info: ControllerInfo;
  /** Where caught failures are counted (a fresh, silent one when omitted). */
  errors?: InternalErrors;
  /** About the host, for /v1/status (e.g. a veth peer without XDP), asked at each status: some come and go while it runs. */
  warnings?: () => string[];
  /** The host's addresses: a new VIP or backend on one (or on a prefix's network or broadcast address) is refused, a stored one reported. */
  host?: { readonly current: HostAddresses; refresh(): Promise<void> };
  /** Where each event is logged, the line being the event (none when omitted). */
  log?: EventLog;
  /** New flows per second over all CPUs that count as a flood (flood-state.ts; its default when omitted). */
  floodThreshold?: number | undefined;
  /** Via-vip probes bind its source address and check its interface on failure (when omitted: neither). */
  probeOrigin?: ProbeOrigin;
}
