/**
 * The balancer's own sources (xlb_config.source_v4/v6: the ipip outer source, the
 * source via-vip probes bind and the one drop_probe_loop compares) follow the XDP
 * interface when `xlb serve` took them from it: a re-addressed interface, or one
 * addressed after start (DHCP), moves them in the data plane and in the probes' origin,
 * each family on its own. A source given by --source-v4/--source-v6 stays as given.
 * A family without a source, or with one the host does not have, holds its via-vip
 * probes with a reason saying so: their bind would fail (EADDRNOTAVAIL) for the LB's
 * sake, not the backend's.
 */
import { readFileSync } from 'node:fs';
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os';
import type { Controller } from '../controller/controller.js';
import type { ProbeOrigin } from '../controller/options.js';
import type { DataplaneConfig } from '../dataplane/records.js';
import { canonicalAddress, parseAddress } from '../net/address.js';
import { probeOrigin, sourceText } from './probe-origin.js';

const FAMILIES = ['v4', 'v6'] as const;
type SourceFamily = (typeof FAMILIES)[number];

/** Something of each family: a source as text (null: none), or why its probes are held (null: not held). */
export type PerFamily<T> = Record<SourceFamily, T>;

/** The host's addresses as os.networkInterfaces() lists them, by interface. */
export type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** IPv4 link-local (169.254.0.0/16) and loopback: scopes a source cannot be sent from to another host. */
const NOT_GLOBAL_V4 = /^(169\.254|127)\./;

/** The interface's addresses a source can be (global scope), by family, in the kernel's order. */
export function sourceCandidates(interfaces: Interfaces, iface: string): PerFamily<string[]> {
  const addresses = interfaces[iface] ?? [];
  return {
    v4: addresses.filter((a) => a.family === 'IPv4' && !NOT_GLOBAL_V4.test(a.address)).map((a) => a.address),
    // A link-local or loopback IPv6 address has a zone (scope id): only global ones have none.
    v6: addresses.filter((a) => a.family === 'IPv6' && !a.scopeid && !a.internal).map((a) => canonicalAddress(a.address)),
  };
}

/** IFA_F_DADFAILED | IFA_F_TENTATIVE: an IPv6 address that cannot be bound (still in, or failed, duplicate address detection). */
const UNBINDABLE_V6_FLAGS = 0x08 | 0x40;

/** The IPv6 addresses /proc/net/if_inet6 (address, ifindex, prefix, scope, flags, name per line) flags as not bindable, canonical. */
export function unbindableV6(ifInet6: string): Set<string> {
  const unbindable = new Set<string>();
  for (const line of ifInet6.split('\n')) {
    const [hex, , , , flags] = line.trim().split(/\s+/);
    if (hex?.length !== 32 || flags === undefined || (parseInt(flags, 16) & UNBINDABLE_V6_FLAGS) === 0) continue;
    unbindable.add(canonicalAddress(hex.match(/.{4}/g)!.join(':')));
  }
  return unbindable;
}

/** The host's interfaces without the IPv6 addresses `unbindable` names: neither a source nor the host's (a bind to one fails). */
export const bindableInterfaces = (interfaces: Interfaces, unbindable: ReadonlySet<string>): Interfaces =>
  Object.fromEntries(
    Object.entries(interfaces).map(([name, list]) => [
      name,
      (list ?? []).filter((a) => a.family !== 'IPv6' || !unbindable.has(canonicalAddress(a.address.split('%')[0]!))),
    ]),
  );

/** The interfaces as this network namespace has them now, less the IPv6 addresses not bindable. */
function readInterfaces(): Interfaces {
  let ifInet6 = '';
  try {
    ifInet6 = readFileSync('/proc/net/if_inet6', 'utf8');
  } catch {
    // no IPv6 in this kernel: nothing to leave out
  }
  return bindableInterfaces(networkInterfaces(), unbindableV6(ifInet6));
}

/** The interface's first global (and bindable) IPv4 and IPv6 addresses now, as a followed source would take them. */
export function interfaceSources(iface: string): PerFamily<string | null> {
  const candidates = sourceCandidates(readInterfaces(), iface);
  return { v4: candidates.v4[0] ?? null, v6: candidates.v6[0] ?? null };
}

/** Every address of every interface, canonical. */
export const hostAddresses = (interfaces: Interfaces): Set<string> =>
  new Set(
    Object.values(interfaces)
      .flatMap((list) => list ?? [])
      .map((a) => canonicalAddress(a.address.split('%')[0]!)),
  );

/** A followed source: the current one while the interface keeps it (a second address does not move it), else its first, else none. */
export const followedSource = (current: string | null, candidates: readonly string[]): string | null =>
  current !== null && candidates.includes(current) ? current : (candidates[0] ?? null);

/** Why the LB's via-vip probes of a family cannot leave, or null when they can. */
export function sourceHoldReason(family: SourceFamily, source: string | null, iface: string, host: ReadonlySet<string>): string | null {
  const ip = family === 'v4' ? 'IPv4' : 'IPv6';
  if (source === null) return `waiting for the LB's ${ip} source: ${iface} has no global ${ip} address and --source-${family} is not given`;
  if (!host.has(source)) return `waiting for the LB's ${ip} source: --source-${family} ${source} is not an address of this host`;
  return null;
}

/** The LB's sources and their probes' holds, as the interfaces are now. */
export interface SourceReading {
  sources: PerFamily<string | null>;
  held: PerFamily<string | null>;
}

/** The sources after `previous` as the interfaces are now: a followed family follows `iface`, a given one (`given`) stays. */
export function readSources(
  previous: PerFamily<string | null>,
  given: PerFamily<boolean>,
  iface: string,
  interfaces: Interfaces,
): SourceReading {
  const candidates = sourceCandidates(interfaces, iface);
  const host = hostAddresses(interfaces);
  const source = (family: SourceFamily) => (given[family] ? previous[family] : followedSource(previous[family], candidates[family]));
  const sources = { v4: source('v4'), v6: source('v6') };
  return { sources, held: { v4: sourceHoldReason('v4', sources.v4, iface, host), v6: sourceHoldReason('v6', sources.v6, iface, host) } };
}

/** The source of a family as the data plane's config holds it (16 bytes, all zero for none). */
const sourceBytes = (source: string | null): Buffer => (source === null ? Buffer.alloc(16) : parseAddress(source).bytes);

const sameSources = (a: PerFamily<string | null>, b: PerFamily<string | null>) => a.v4 === b.v4 && a.v6 === b.v6;

export interface SourceFollowerOptions {
  iface: string;
  /** The families whose source --source-v4/--source-v6 gave. */
  given: PerFamily<boolean>;
  /** The balancer's configuration, its given sources set and its followed ones (all zero) the follower's to pick. */
  config: DataplaneConfig;
  dp: { setConfig(config: DataplaneConfig): void };
  read?: () => Interfaces;
}

/**
 * Re-reads the interfaces on each check (cheap: one getifaddrs, no process) and applies
 * a change: the data plane's sources when a followed one moved, the probes' origin
 * (with its holds) on any change, and a `link` event naming the new sources.
 */
export class SourceFollower {
  private readonly read: () => Interfaces;
  private reading: SourceReading;
  /** The followed families that have had a source: losing it is worth a warning (never having one, on a host of one family, is not). */
  private readonly hadSource: PerFamily<boolean> = { v4: false, v6: false };

  constructor(private readonly options: SourceFollowerOptions) {
    this.read = options.read ?? readInterfaces;
    const { sourceV4, sourceV6 } = options.config;
    const start = { v4: sourceText(4, sourceV4), v6: sourceText(6, sourceV6) };
    this.reading = readSources(start, options.given, options.iface, this.read());
    this.noteSources();
  }

  /** The balancer's config with the sources as last read: what the owner writes first, and each move rewrites. */
  get config(): DataplaneConfig {
    const { sources } = this.reading;
    return { ...this.options.config, sourceV4: sourceBytes(sources.v4), sourceV6: sourceBytes(sources.v6) };
  }

  private noteSources(): void {
    for (const family of FAMILIES) if (this.reading.sources[family] !== null) this.hadSource[family] = true;
  }

  /** Where via-vip probes leave from, as last read. */
  get origin(): ProbeOrigin {
    const { sources, held } = this.reading;
    return probeOrigin(this.options.iface, sourceBytes(sources.v4), sourceBytes(sources.v6), held);
  }

  /** For /v1/status: each given source that is not an address of the host, and each followed one the interface lost. */
  warnings(): string[] {
    return FAMILIES.flatMap((family) => {
      if (this.reading.held[family] === null) return [];
      if (this.options.given[family])
        return [
          `--source-${family} ${this.reading.sources[family]} is not an address of this host: its via-vip health checks are held until it is`,
        ];
      const ip = family === 'v4' ? 'IPv4' : 'IPv6';
      return this.hadSource[family]
        ? [`${this.options.iface} has no global ${ip} address any more: via-vip health checks of ${ip} VIPs are held until it has one`]
        : [];
    });
  }

  /** Reads the interfaces again and applies what changed to the data plane and `controller`. */
  check(controller: Pick<Controller, 'setProbeOrigin' | 'publish' | 'status'>): void {
    const { iface, given } = this.options;
    const next = readSources(this.reading.sources, given, iface, this.read());
    const moved = !sameSources(next.sources, this.reading.sources);
    if (!moved && next.held.v4 === this.reading.held.v4 && next.held.v6 === this.reading.held.v6) return;
    this.reading = next;
    this.noteSources();
    if (moved) this.options.dp.setConfig(this.config);
    controller.setProbeOrigin(this.origin);
    if (!moved) return;
    const { attached, attachReason } = controller.status();
    controller.publish({ type: 'link', iface, attached, reason: attachReason, sources: next.sources });
  }
}
