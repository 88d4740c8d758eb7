/**
 * xlb_probes_v1: which backend each via-vip health-check probe goes to. A probe is
 * known by its destination (the VIP address and the check port), protocol and local
 * port; the tc program xlb_probe forwards it as the VIP would forward a client's packet.
 */
import type { BpfMap } from '@xlb/native';
import { type Family, probeCodec, probeKeyCodec } from './codec.js';

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

const encodeKey = (entry: ProbeEntry) =>
  probeKeyCodec.encode({ addr: entry.address, port: entry.port, sport: entry.localPort, proto: entry.proto, family: entry.family });
const encodeValue = (entry: ProbeEntry) => probeCodec.encode({ backend_id: entry.backendId, forwarding: entry.forwarding });

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
  const wanted = new Map(entries.map((entry) => [encodeKey(entry).toString('hex'), entry]));
  for (const [hex, entry] of wanted) {
    const value = encodeValue(entry);
    if (!map.lookup(Buffer.from(hex, 'hex'))?.equals(value)) map.update(Buffer.from(hex, 'hex'), value);
  }
  for (const key of map.keys()) if (!wanted.has(key.toString('hex'))) map.delete(key);
}
