/**
 * The via-vip probe ports (PROBE_PORT_MIN..MAX) kept out of the kernel's ephemeral
 * allocation: `xlb serve` adds them to net.ipv4.ip_local_reserved_ports of its network
 * namespace, so no outgoing connection takes one. A process can still bind one
 * explicitly; a probe that finds its port taken is held and moved (health/checker.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PROBE_PORT_MAX, PROBE_PORT_MIN } from '../dataplane/codec.js';
import { BUSY_PORT_RETRY_BATCH, heldPortsText, type ProbeSocket, trialBind } from '../health/busy-ports.js';

const SYSCTL_DIR = '/proc/sys/net/ipv4';
const PROBE_RANGE = `${PROBE_PORT_MIN}-${PROBE_PORT_MAX}`;

type PortRange = [low: number, high: number];

/** The ranges of a reserved-ports list ("1000,2000-2010"; empty: none), or an error naming the bad item. */
function parsePortList(text: string): PortRange[] {
  return text
    .trim()
    .split(',')
    .filter((item) => item !== '')
    .map((item) => {
      const match = /^(\d+)(?:-(\d+))?$/.exec(item.trim());
      const low = Number(match?.[1]);
      const high = match?.[2] === undefined ? low : Number(match[2]);
      if (!match || low > high || high > 65535) throw new Error(`${JSON.stringify(item)} is not a port or a low-high port range`);
      return [low, high];
    });
}

/**
 * A reserved-ports list with `low`-`high` added: every port of `existing` stays, ranges
 * that overlap or touch are joined, in port order.
 */
export function withReservedRange(existing: string, low: number, high: number): string {
  const ranges = [...parsePortList(existing), [low, high] as PortRange].sort((a, b) => a[0] - b[0]);
  const merged: PortRange[] = [];
  for (const [from, to] of ranges) {
    const last = merged.at(-1);
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged.map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`)).join(',');
}

/** The ports of low..high outside the probe range. */
const ephemeralPortsLeft = (low: number, high: number) =>
  Math.max(0, high - low + 1) - Math.max(0, Math.min(high, PROBE_PORT_MAX) - Math.max(low, PROBE_PORT_MIN) + 1);

/** What an ephemeral range (ip_local_port_range, "32768\t65535") means for the probe ports: `overlaps` warns. */
export function ephemeralRangeNote(portRange: string): { overlaps: boolean; text: string } {
  const [low = 0, high = 0] = portRange.trim().split(/\s+/).map(Number);
  const range = `net.ipv4.ip_local_port_range ${low}-${high}`;
  return high < PROBE_PORT_MIN || low > PROBE_PORT_MAX
    ? { overlaps: false, text: `${range} leaves the health-check probe ports ${PROBE_RANGE} free` }
    : {
        overlaps: true,
        text:
          `${range} overlaps the health-check probe ports ${PROBE_RANGE}, which xlb serve reserves in ` +
          `net.ipv4.ip_local_reserved_ports: outgoing connections keep ${ephemeralPortsLeft(low, high)} ephemeral ports`,
      };
}

/** A net.ipv4 sysctl's text, in this process's network namespace. */
export const sysctl = (name: string) => readFileSync(`${SYSCTL_DIR}/${name}`, 'utf8');

/**
 * Adds the probe ports to ip_local_reserved_ports (merged with what is there), and
 * returns what the start log should warn of. They stay reserved at exit: the next
 * daemon, or another in this namespace, probes from the same ports.
 */
export function reserveProbePorts(): string[] {
  const warnings: string[] = [];
  try {
    const ephemeral = ephemeralRangeNote(sysctl('ip_local_port_range'));
    if (ephemeral.overlaps) warnings.push(ephemeral.text);
    const existing = sysctl('ip_local_reserved_ports');
    const wanted = withReservedRange(existing, PROBE_PORT_MIN, PROBE_PORT_MAX);
    if (wanted !== existing.trim()) writeFileSync(`${SYSCTL_DIR}/ip_local_reserved_ports`, wanted);
  } catch (error) {
    warnings.push(
      `could not reserve the health-check probe ports ${PROBE_RANGE} in net.ipv4.ip_local_reserved_ports: ${(error as Error).message}; ` +
        'an outgoing connection that takes one holds that check until it moves to another port',
    );
  }
  return warnings;
}

/**
 * What other processes hold of the probe ports now (a trial bind of each on every
 * address of its family fails), for xlb preflight: null when they hold none. Counts a
 * port bound to any one address, though a probe binds only the LB's source.
 */
export async function heldProbePortsNote(bind = trialBind): Promise<string | null> {
  const all: ProbeSocket[] = [];
  for (const family of [4, 6] as const)
    for (const transport of ['tcp', 'udp'] as const)
      for (let port = PROBE_PORT_MIN; port <= PROBE_PORT_MAX; port++) all.push({ family, transport, port });
  const held: ProbeSocket[] = [];
  for (let start = 0; start < all.length; start += BUSY_PORT_RETRY_BATCH) {
    const batch = all.slice(start, start + BUSY_PORT_RETRY_BATCH);
    const bound = await Promise.all(batch.map((socket) => bind(socket)));
    held.push(...batch.filter((_, index) => !bound[index]));
  }
  return held.length === 0 ? null : `${heldPortsText(held)}: via-vip checks cannot probe from them`;
}
