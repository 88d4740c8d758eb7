/**
 * xlb_probes_v1: which backend each via-vip health-check probe goes to. A probe is
 * known by its destination (the VIP address and the check port), protocol and local
 * port; the tc program xlb_probe forwards it as the VIP would forward a client's packet,
 * and stamps it sent in xlb_probe_sent_v1.
 */
import type { BpfMap } from '@xlb/native';
import { formatAddress } from '../net/address.js';
import { type Family, FORWARD_DSR, FORWARD_IPIP, probeCodec, probeKeyCodec, probeSentCodec, protocolName } from './codec.js';

export interface ProbeEntry {
  family: Family;
  /** The VIP address: 16 bytes, network order. */
  address: Buffer;
  /** The check port. */
  port: number;
  proto: number;
  /** The probe's local port, PROBE_PORT_MIN..PROBE_PORT_MAX. */
  localPort: number;
  /** The data-plane backend record the probe goes to. */
  backendId: number;
  /** FORWARD_*: how it goes there. */
  forwarding: number;
}

/** What names a probe's packets: the fields of an entry that key it. */
export type ProbeKey = Omit<ProbeEntry, 'backendId' | 'forwarding'>;

/** A probe's key as xlb_probes_v1 and xlb_probe_sent_v1 hold it. */
export const encodeProbeKey = (entry: ProbeKey) =>
  probeKeyCodec.encode({ addr: entry.address, port: entry.port, sport: entry.localPort, proto: entry.proto, family: entry.family });
const encodeValue = (entry: ProbeEntry) => probeCodec.encode({ backend_id: entry.backendId, forwarding: entry.forwarding });

/**
 * When xlb_probe last sent the probe of `key` on to its backend (xlb_probe_sent_v1:
 * bpf_ktime_get_ns, CLOCK_MONOTONIC as process.hrtime.bigint()), or null when it has
 * not or the stamp aged out.
 */
export function readProbeSent(map: Pick<BpfMap, 'lookup'>, key: ProbeKey): bigint | null {
  const value = map.lookup(encodeProbeKey(key));
  return value ? value.readBigUInt64LE(probeSentCodec.offsets.sent_ns) : null;
}

/** The map's entries (encoded key -> value), for reading and writing it as a whole. */
export interface ProbeMap {
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  lookup(key: Buffer): Buffer | null;
  keys(): Buffer[];
}

/** A kernel map as a ProbeMap. */
export function kernelProbeMap(map: BpfMap): ProbeMap {
  return {
    update: (key, value) => map.update(key, value),
    delete: (key) => map.delete(key),
    lookup: (key) => map.lookup(key),
    keys: () => {
      const keys: Buffer[] = [];
      for (let key = map.nextKey(null); key; key = map.nextKey(key)) keys.push(key);
      return keys;
    },
  };
}

export function readProbes(map: ProbeMap): ProbeEntry[] {
  return map.keys().flatMap((key) => {
    const value = map.lookup(key);
    if (!value) return [];
    const k = probeKeyCodec.decode(key);
    const v = probeCodec.decode(value);
    return [
      {
        family: k.family as Family,
        address: k.addr,
        port: k.port,
        proto: k.proto,
        localPort: k.sport,
        backendId: v.backend_id,
        forwarding: v.forwarding,
      },
    ];
  });
}

/** Makes the map hold exactly `entries`: new and changed ones written first, then the rest removed. */
export function writeProbes(map: ProbeMap, entries: readonly ProbeEntry[]): void {
  const wanted = new Map(entries.map((entry) => [encodeProbeKey(entry).toString('hex'), entry]));
  for (const [hex, entry] of wanted) {
    const value = encodeValue(entry);
    if (!map.lookup(Buffer.from(hex, 'hex'))?.equals(value)) map.update(Buffer.from(hex, 'hex'), value);
  }
  for (const key of map.keys()) if (!wanted.has(key.toString('hex'))) map.delete(key);
}

/** An entry the map holds otherwise than wanted: `missing` (wanted, absent), `changed` (another backend or forwarding), `extra` (not wanted). */
export interface ProbeDifference {
  kind: 'missing' | 'changed' | 'extra';
  /** The wanted entry; for `extra`, the one found. */
  entry: ProbeEntry;
  /** For `changed`: the entry found. */
  found?: ProbeEntry;
}

/** How the entries read from the map differ from those wanted, in the order wanted (then the extra ones). */
export function probeDifferences(wanted: readonly ProbeEntry[], read: readonly ProbeEntry[]): ProbeDifference[] {
  const found = new Map(read.map((entry) => [encodeProbeKey(entry).toString('hex'), entry]));
  const differences: ProbeDifference[] = [];
  for (const entry of wanted) {
    const key = encodeProbeKey(entry).toString('hex');
    const there = found.get(key);
    found.delete(key);
    if (!there) differences.push({ kind: 'missing', entry });
    else if (!encodeValue(there).equals(encodeValue(entry))) differences.push({ kind: 'changed', entry, found: there });
  }
  for (const entry of found.values()) differences.push({ kind: 'extra', entry });
  return differences;
}

/**
 * Rewrites the map to `wanted` where it differs (an entry emptied or altered from
 * outside the daemon sends its probes nowhere or to another backend); returns the
 * differences found. Nothing is wanted yet (null) before the first write.
 */
export function repairProbes(map: ProbeMap, wanted: readonly ProbeEntry[] | null): ProbeDifference[] {
  if (!wanted) return [];
  const differences = probeDifferences(wanted, readProbes(map));
  if (differences.length > 0) writeProbes(map, wanted);
  return differences;
}

const FORWARDING_NAMES: Record<number, string> = { [FORWARD_DSR]: 'dsr', [FORWARD_IPIP]: 'ipip' };

/** An entry as text: `tcp 198.19.0.1:80 from port 61440 -> backend 3 by dsr`. */
function probeText(entry: ProbeEntry): string {
  const address = formatAddress(entry.family, entry.address);
  const destination = entry.family === 6 ? `[${address}]:${entry.port}` : `${address}:${entry.port}`;
  const forwarding = FORWARDING_NAMES[entry.forwarding] ?? `forwarding ${entry.forwarding}`;
  return `${protocolName(entry.proto)} ${destination} from port ${entry.localPort} -> backend ${entry.backendId} by ${forwarding}`;
}

/** The differences as one line, the first few named. */
export function probeDifferencesText(differences: readonly ProbeDifference[], named = 3): string {
  const texts = differences.slice(0, named).map((d) => {
    if (d.kind === 'changed' && d.found) return `changed ${probeText(d.found)}, wanted ${probeText(d.entry)}`;
    return `${d.kind} ${probeText(d.entry)}`;
  });
  const more = differences.length > named ? `; and ${differences.length - named} more` : '';
  return `${texts.join('; ')}${more}`;
}
