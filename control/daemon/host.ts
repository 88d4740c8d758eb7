/**
 * What the daemon learns from the host's network stack with iproute2 (JSON output):
 * neighbour MACs for backends, the host's addresses, the default gateway's MAC.
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';
import ipaddr from 'ipaddr.js';
import { stderrOf } from '../child-output.js';
import { canonicalAddress as canonical, parseMac } from '../net/address.js';
import type { HostAddresses } from '../state/invariants.js';

const execFileAsync = promisify(execFile);

/** An `ip -j` listing, parsed; an empty answer (nothing listed) as an empty array. */
export async function ipJson<T>(args: string[]): Promise<T> {
  const { stdout } = await execFileAsync('ip', ['-j', ...args]);
  return stdout.trim() ? JSON.parse(stdout) : ([] as T);
}

interface NeighEntry {
  dst: string;
  lladdr?: string;
  state?: string[];
}

/** Neighbour states whose MAC is usable (the kernel keeps refreshing STALE ones on use). */
const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

/** Probes to an address that stays unresolved back off to this interval. */
const PROBE_BACKOFF_MAX_MS = 16_000;
const FIRST_PROBE_BACKOFF_MS = 2_000;
/** Probes one refresh sends at most; the longest-waiting go first. */
const MAX_PROBES_PER_REFRESH = 1000;

export class NeighbourTable {
  private macs = new Map<string, Buffer>();
  /** Unresolved addresses: when to probe next, and the wait after that. */
  private probes = new Map<string, { at: number; backoff: number }>();

  constructor(
    private readonly iface: string,
    private readonly maxProbes = MAX_PROBES_PER_REFRESH,
  ) {}

  mac(address: string): Buffer | null {
    return this.macs.get(address) ?? null;
  }

  /**
   * Re-reads the table; sends a datagram to the discard port of each wanted address
   * that has no usable entry, so the kernel resolves it for the next refresh. An
   * address that stays unresolved is probed again after 2, 4, 8, then every 16 s, and
   * one refresh sends at most `maxProbes` (those due longest first), so thousands of
   * unreachable backends cost a trickle, not a burst every refresh.
   * Returns the wanted addresses whose MAC changed.
   */
  async refresh(wanted: string[]): Promise<Set<string>> {
    const entries = await ipJson<NeighEntry[]>(['neigh', 'show', 'dev', this.iface]);
    const next = new Map<string, Buffer>();
    for (const e of entries) {
      if (!e.lladdr || !(e.state ?? []).some((s) => USABLE.has(s))) continue;
      try {
        next.set(canonical(e.dst), parseMac(e.lladdr));
      } catch {
        // not an address or MAC we use
      }
    }
    const changed = new Set(wanted.filter((a) => !sameMac(this.macs.get(a), next.get(a))));
    this.macs = next;
    const now = Date.now();
    const probes = new Map<string, { at: number; backoff: number }>();
    const due: string[] = [];
    for (const address of wanted) {
      if (next.has(address)) continue;
      const probe = this.probes.get(address) ?? { at: now, backoff: FIRST_PROBE_BACKOFF_MS };
      probes.set(address, probe);
      if (probe.at <= now) due.push(address);
    }
    if (due.length > this.maxProbes) {
      due.sort((a, b) => probes.get(a)!.at - probes.get(b)!.at);
      due.length = this.maxProbes;
    }
    for (const address of due) {
      const { backoff } = probes.get(address)!;
      probes.set(address, { at: now + backoff, backoff: Math.min(backoff * 2, PROBE_BACKOFF_MAX_MS) });
    }
    this.probes = probes;
    await probeNeighbours(due);
    return changed;
  }
}

const sameMac = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);

/** One empty datagram to the discard port of each address, through one socket per family. */
async function probeNeighbours(addresses: string[]): Promise<void> {
  for (const family of ['udp4', 'udp6'] as const) {
    const targets = addresses.filter((a) => a.includes(':') === (family === 'udp6'));
    if (targets.length === 0) continue;
    const socket = dgram.createSocket(family);
    // Unreachable addresses report errors asynchronously; they only mean "not yet".
    socket.on('error', () => {});
    await Promise.all(targets.map((address) => new Promise<void>((resolve) => socket.send(Buffer.alloc(0), 9, address, () => resolve()))));
    socket.close();
  }
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
}

/** Connected IPv4 prefixes this long or shorter have a network and a directed broadcast address (/31 and /32 have none). */
const LONGEST_PREFIX_WITH_ENDS = 30;

/** Every address of every interface in this network namespace, and the network and broadcast addresses of their IPv4 prefixes. */
async function readHostAddresses(): Promise<HostAddresses> {
  const links = await ipJson<{ ifname: string; addr_info?: AddrInfo[] }[]>(['addr', 'show']);
  const own = new Map<string, string>();
  const prefixEnds = new Map<string, { end: 'network' | 'broadcast'; prefix: string }>();
  for (const link of links) {
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      own.set(canonical(a.local), link.ifname);
      if (a.family === 'inet' && a.prefixlen <= LONGEST_PREFIX_WITH_ENDS) {
        const network = ipaddr.IPv4.networkAddressFromCIDR(`${a.local}/${a.prefixlen}`).toString();
        const prefix = `${network}/${a.prefixlen}`;
        prefixEnds.set(network, { end: 'network', prefix });
        prefixEnds.set(ipaddr.IPv4.broadcastAddressFromCIDR(prefix).toString(), { end: 'broadcast', prefix });
      }
    }
  }
  return { own, prefixEnds };
}

const readingText = (reading: HostAddresses) => JSON.stringify([[...reading.own], [...reading.prefixEnds]]);

/**
 * The host's addresses as last read. `refresh` re-reads them, keeps the last good reading
 * when iproute2 fails (and rejects with the failure), and keeps the same object while nothing changed, so what is derived
 * from a reading is recomputed only when the host changed.
 */
export class HostAddressBook {
  private constructor(private reading: HostAddresses) {}

  static async open(): Promise<HostAddressBook> {
    return new HostAddressBook(await readHostAddresses());
  }

  get current(): HostAddresses {
    return this.reading;
  }

  async refresh(): Promise<void> {
    const next = await readHostAddresses();
    if (readingText(next) !== readingText(this.reading)) this.reading = next;
  }
}

/** iproute2's answer for a family the kernel runs without (booted with ipv6.disable=1): it has no routes. */
const FAMILY_ABSENT = /Address family not supported by protocol/;

/**
 * The MAC of the default route's gateway, resolving it if needed; null when there is none.
 * A family whose routes cannot be read is skipped and `report`ed: off-link ipip backends
 * then go out without a gateway MAC.
 */
export async function gatewayMac(
  iface: string,
  report: (error: unknown, context: Record<string, unknown>) => void,
): Promise<Buffer | null> {
  for (const family of ['-4', '-6']) {
    const args = [family, 'route', 'show', 'default', 'dev', iface];
    const routes = await ipJson<{ gateway?: string; dev?: string }[]>(args).catch((error: unknown) => {
      if (!FAMILY_ABSENT.test(stderrOf(error)))
        report(error, { reading: 'default route for the gateway MAC', command: `ip ${args.join(' ')}` });
      return [];
    });
    const gateway = routes.find((r) => r.gateway)?.gateway;
    if (!gateway) continue;
    const neighbours = new NeighbourTable(iface);
    const address = canonical(gateway);
    await neighbours.refresh([address]);
    if (!neighbours.mac(address)) await neighbours.refresh([address]);
    const mac = neighbours.mac(address);
    if (mac) return mac;
  }
  return null;
}
