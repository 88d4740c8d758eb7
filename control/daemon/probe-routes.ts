/**
 * Via-vip probes' own route: policy rules send packets from the probe ports to xlb's
 * table, which routes each via-vip VIP out of the XDP interface to a fake next hop
 * with a permanent neighbour entry. The kernel then never waits for ARP/ND (or follows
 * a dead router of the host's route to the VIP) before the packet reaches xlb_probe,
 * which sets the backend's MAC or encapsulates anyway. A packet to any other address
 * finds no route in the table and goes on to the next rule. `xlb serve` keeps them at
 * exit (the next daemon probes the same way), `xlb down` removes them.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { resolveCheck } from '../checks/registry.js';
import { PROBE_PORT_MIN } from '../dataplane/codec.js';
import { canonicalAddress, type Family, familyOf } from '../net/address.js';
import type { StateFile } from '../state/schema.js';
import { ipJson } from './host.js';

const execFileAsync = promisify(execFile);

/** xlb's routing table ("xlb" in ASCII, as the tc filter's handle). */
export const PROBE_TABLE = 0x786c62;
/** Before the main table (32766) and the catch-all rules tools add just below it (wg-quick's 32764-32765). */
export const PROBE_RULE_PREF = 100;
/** The kernel refuses a rule port range ending at 65535, so a probe from that port takes the host's route. */
export const PROBE_RULE_PORT_MAX = 65534;
/** The fake next hops ("xl" and "b" in their last bytes): link-local, so no other network owns them. */
export const PROBE_NEXT_HOP = { 4: '169.254.120.108', 6: 'fe80::786c:62' } as const;
/** How often the daemon puts back rules, routes and neighbour entries that went missing (each time a few `ip` processes). */
export const PROBE_ROUTE_REPAIR_MS = 10_000;
/** The families this kernel routes: a kernel booted with ipv6.disable=1 refuses every IPv6 command. */
const families = (): Family[] => (existsSync('/proc/sys/net/ipv6') ? [4, 6] : [4]);
const TRANSPORTS = ['tcp', 'udp'] as const;

/** The addresses of the VIPs whose checks go through the VIP (canonical text, sorted): the ones xlb's table routes. */
export function viaVipAddresses(state: StateFile): string[] {
  const addresses = new Set<string>();
  for (const vip of state.vips)
    if (vip.backends.some((backend) => resolveCheck(vip.healthCheck, backend.address, vip)?.via === 'vip'))
      addresses.add(canonicalAddress(vip.address));
  return [...addresses].sort();
}

/** One rule of `ip -j rule show`, the fields xlb's rules set. */
export interface RuleRow {
  priority?: number;
  table?: string;
  ipproto?: string;
  sport_start?: number;
  sport_end?: number;
}

const ruleMatch = (transport: string) => ['ipproto', transport, 'sport', `${PROBE_PORT_MIN}-${PROBE_RULE_PORT_MAX}`];
const ruleTarget = ['lookup', String(PROBE_TABLE), 'pref', String(PROBE_RULE_PREF)];

/** `ip` arguments adding the probe rules of `family` that `rows` (its `ip -j rule show`) lacks. */
export function missingRules(family: Family, rows: readonly RuleRow[]): string[][] {
  const has = (transport: string) =>
    rows.some(
      (row) =>
        row.priority === PROBE_RULE_PREF &&
        row.table === String(PROBE_TABLE) &&
        row.ipproto === transport &&
        row.sport_start === PROBE_PORT_MIN &&
        row.sport_end === PROBE_RULE_PORT_MAX,
    );
  return TRANSPORTS.filter((transport) => !has(transport)).map((transport) => [
    `-${family}`,
    'rule',
    'add',
    ...ruleMatch(transport),
    ...ruleTarget,
  ]);
}

/** `ip` arguments removing xlb's probe rules of `family` among `rows`. */
export function ownRuleRemovals(family: Family, rows: readonly RuleRow[]): string[][] {
  return rows
    .filter((row) => row.priority === PROBE_RULE_PREF && row.table === String(PROBE_TABLE) && row.ipproto !== undefined)
    .map((row) => [`-${family}`, 'rule', 'del', ...ruleMatch(row.ipproto!), ...ruleTarget]);
}

const hostPrefix = (address: string) => `${address}/${familyOf(address) === 4 ? 32 : 128}`;

/** `ip` arguments adding or removing the table's route to `address` out of `iface`. */
export function routeArgs(verb: 'replace' | 'del', address: string, iface: string): string[] {
  const family = familyOf(address);
  const onlink = family === 4 ? ['onlink'] : []; // an IPv6 link-local next hop is on the link by itself
  const via = ['via', PROBE_NEXT_HOP[family], 'dev', iface, ...onlink];
  return [`-${family}`, 'route', verb, hostPrefix(address), ...via, 'table', String(PROBE_TABLE)];
}

/** The routes to add and remove so that the table routes `wanted` and nothing else of `current` (both canonical). */
export function routeChanges(current: readonly string[], wanted: readonly string[], iface: string): string[][] {
  return [
    ...wanted.filter((address) => !current.includes(address)).map((address) => routeArgs('replace', address, iface)),
    ...current.filter((address) => !wanted.includes(address)).map((address) => routeArgs('del', address, iface)),
  ];
}

/** `ip` arguments putting the permanent neighbour entry of `family`'s fake next hop on `iface` (any MAC: xlb_probe sets its own). */
export const neighbourArgs = (family: Family, iface: string, mac: string): string[] => [
  `-${family}`,
  'neigh',
  'replace',
  PROBE_NEXT_HOP[family],
  'lladdr',
  mac,
  'dev',
  iface,
  'nud',
  'permanent',
];

const ip = async (args: string[]) => (await execFileAsync('ip', args)).stdout;

/** The addresses xlb's table routes out of `iface` (canonical), of both families. */
async function tableRoutes(iface: string): Promise<string[]> {
  const routes: string[] = [];
  for (const family of families()) {
    try {
      const rows = await ipJson<{ dst?: string }[]>([`-${family}`, 'route', 'show', 'table', String(PROBE_TABLE), 'dev', iface]);
      routes.push(...rows.flatMap((row) => (row.dst ? [canonicalAddress(row.dst.replace(/\/\d+$/, ''))] : [])));
    } catch (error) {
      // A table without a route does not exist yet; listing it fails.
      if (!/table does not exist/i.test((error as { stderr?: string }).stderr ?? '')) throw error;
    }
  }
  return routes;
}

async function runAll(commands: string[][]): Promise<void> {
  for (const args of commands) await ip(args);
}

/**
 * Keeps the rules, neighbour entries and xlb's table in step with the via-vip VIPs of
 * one interface: `sync` with each new list; one run at a time, the last list wins.
 */
export class ProbeRoutes {
  private wanted: string[] = [];
  /** The list last put in place (joined); null when the last attempt failed. */
  private applied: string | null = null;
  /** Set and cleared in the same turn as the run's loop checks the list, so no sync falls between. */
  private busy = false;
  private running: Promise<void> = Promise.resolve();
  private readonly repair: NodeJS.Timeout;

  constructor(
    private readonly iface: string,
    private readonly onError: (error: unknown) => void,
  ) {
    // The kernel flushes a link's routes and neighbour entries when it goes down: put back what is missing.
    this.repair = setInterval(() => {
      if (this.busy) return;
      this.applied = null;
      void this.sync(this.wanted);
    }, PROBE_ROUTE_REPAIR_MS).unref();
  }

  close(): void {
    clearInterval(this.repair);
  }

  /** Routes `addresses` (canonical) and no other; resolves once they are in place (or the attempt failed and was reported). */
  sync(addresses: string[]): Promise<void> {
    this.wanted = addresses;
    if (!this.busy && addresses.join() !== this.applied) {
      this.busy = true;
      this.running = this.run();
    }
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      while (this.wanted.join() !== this.applied) {
        const wanted = this.wanted;
        await this.apply(wanted);
        this.applied = wanted.join();
      }
    } catch (error) {
      this.applied = null;
      this.onError(error); // the next sync tries again
    } finally {
      this.busy = false;
    }
  }

  private async apply(wanted: string[]): Promise<void> {
    const mac = readFileSync(`/sys/class/net/${this.iface}/address`, 'utf8').trim();
    const commands: string[][] = [];
    for (const family of families()) {
      commands.push(...missingRules(family, await ipJson<RuleRow[]>([`-${family}`, 'rule', 'show'])));
      commands.push(neighbourArgs(family, this.iface, mac));
    }
    commands.push(...routeChanges(await tableRoutes(this.iface), wanted, this.iface));
    // IPv4 first: an interface with IPv6 turned off refuses the IPv6 commands, which must not keep IPv4 probes waiting.
    await runAll(commands.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? '')));
  }
}

/**
 * For `xlb down`: removes xlb's table routes out of `iface` and its fake next hops'
 * neighbour entries there, and the rules once the table routes nothing (another
 * interface's daemon may still use them). Returns how many routes it removed.
 */
export async function removeProbeRoutes(iface: string): Promise<number> {
  // An interface that is gone took its routes and neighbour entries with it.
  const present = existsSync(`/sys/class/net/${iface}`);
  const routes = present ? await tableRoutes(iface) : [];
  await runAll(routeChanges(routes, [], iface));
  for (const family of present ? families() : []) {
    const entries = await ipJson<{ dst?: string }[]>([`-${family}`, 'neigh', 'show', 'dev', iface, 'nud', 'permanent']);
    if (entries.some((entry) => entry.dst === PROBE_NEXT_HOP[family]))
      await ip([`-${family}`, 'neigh', 'del', PROBE_NEXT_HOP[family], 'dev', iface]);
  }
  const left = await Promise.all(
    families().map((family) => ipJson<unknown[]>([`-${family}`, 'route', 'show', 'table', String(PROBE_TABLE)]).catch(() => [])),
  );
  if (left.every((routes) => routes.length === 0))
    for (const family of families()) await runAll(ownRuleRemovals(family, await ipJson<RuleRow[]>([`-${family}`, 'rule', 'show'])));
  return routes.length;
}
