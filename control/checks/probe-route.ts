/**
 * Why a via-vip probe missed xlb_probe when its route is the cause: the tc program
 * sends probes from the XDP interface's egress only, so a route to the VIP that leaves
 * by another interface (by the main table or a policy rule on its ports) takes the
 * probe past it: the balancer drops it when it comes back (drop_probe_loop); another
 * LB or a NAT may answer it (probe-stamp.ts). Asked of the kernel only after a failure
 * or a success that missed xlb_probe.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROUTE_LOOKUP_TIMEOUT_MS = 2000;
/** How long a lookup answers for its flow: a failing check's next probes reuse it. */
const ROUTE_LOOKUP_REUSE_MS = 10_000;
/** Lookups (each an `ip` process) started in one second at most, however many VIPs fail: an outage must not fork the daemon to a standstill. */
const ROUTE_LOOKUPS_PER_SECOND = 5;
const recentLookups = new Map<string, { at: number; leaves: Promise<string | null> }>();
const lookupsThisSecond = { second: 0, count: 0 };

/** The interface an `ip -j route get` answer leaves by, or null when it names none. */
export function routeDevice(json: string): string | null {
  const routes = JSON.parse(json) as unknown;
  if (!Array.isArray(routes)) return null;
  const dev = (routes[0] as { dev?: unknown } | undefined)?.dev;
  return typeof dev === 'string' ? dev : null;
}

/** The problem of a probe to `address` whose route leaves by `leaves` when probes go out of `iface`, or null. */
export function routeProblem(address: string, leaves: string | null, iface: string): string | null {
  if (leaves === null || leaves === iface) return null;
  return `route to ${address} leaves via ${leaves}, not ${iface}`;
}

/** A probe's packets as the kernel routes them: to the VIP and check port, from the LB's source and the probe's local port. */
export interface ProbeFlow {
  address: string;
  source: string | undefined;
  protocol: 'tcp' | 'udp';
  sport: number | undefined;
  dport: number;
}

/** `ip` arguments asking the route of `flow`'s packets: with protocol and ports, as policy routing may choose by them. */
export function routeGetArgs(flow: ProbeFlow): string[] {
  const source = flow.source === undefined ? [] : ['from', flow.source];
  const sport = flow.sport === undefined ? [] : ['sport', String(flow.sport)];
  return ['-j', 'route', 'get', flow.address, ...source, 'ipproto', flow.protocol, ...sport, 'dport', String(flow.dport)];
}

/** The interface the kernel routes `args`' packet by; null when it has no route or the lookup fails. */
async function routeLeaves(args: string[]): Promise<string | null> {
  try {
    return routeDevice((await execFileAsync('ip', args, { timeout: ROUTE_LOOKUP_TIMEOUT_MS })).stdout);
  } catch {
    return null; // no route (ENETUNREACH names that already) or no answer: nothing to add
  }
}

/** Whether a lookup may start at `now` (ms), counting it: ROUTE_LOOKUPS_PER_SECOND in each second. */
export function routeLookupAllowed(now: number): boolean {
  const second = Math.floor(now / 1000);
  if (lookupsThisSecond.second !== second) Object.assign(lookupsThisSecond, { second, count: 0 });
  if (lookupsThisSecond.count >= ROUTE_LOOKUPS_PER_SECOND) return false;
  lookupsThisSecond.count++;
  return true;
}

/** routeLeaves, answered by a lookup of the last ROUTE_LOOKUP_REUSE_MS when there is one; null past the budget of lookups a second. */
function recentRouteLeaves(flow: ProbeFlow): Promise<string | null> {
  const args = routeGetArgs(flow);
  const key = args.join(' ');
  const now = Date.now();
  const recent = recentLookups.get(key);
  if (recent && now - recent.at < ROUTE_LOOKUP_REUSE_MS) return recent.leaves;
  for (const [other, lookup] of recentLookups) if (now - lookup.at >= ROUTE_LOOKUP_REUSE_MS) recentLookups.delete(other);
  if (!routeLookupAllowed(now)) return Promise.resolve(null); // a later failure asks
  const leaves = routeLeaves(args);
  recentLookups.set(key, { at: now, leaves });
  return leaves;
}

/** Why the probe `flow` could not pass xlb_probe on `iface`, or null when its route is not the cause. */
export async function probeRouteProblem(flow: ProbeFlow, iface: string): Promise<string | null> {
  return routeProblem(flow.address, await recentRouteLeaves(flow), iface);
}
