/**
 * Probe entries held to what the checks want: the differences between the entries
 * wanted and those read back, the rewrite of only a map that differs, and the count
 * and message an operator sees when one was repaired.
 */
import { describe, expect, test } from 'vitest';
import { InternalErrors } from '../../control/controller/internal-errors.js';
import { repairProbeEntries } from '../../control/controller/probe-repair.js';
import { FORWARD_DSR, FORWARD_IPIP, IPPROTO_TCP, IPPROTO_UDP, PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import {
  type ProbeEntry,
  type ProbeMap,
  probeDifferences,
  probeDifferencesText,
  readProbes,
  repairProbes,
  writeProbes,
} from '../../control/dataplane/probes.js';
import { parseAddress } from '../../control/net/address.js';

function entry(address: string, localPort: number, backendId: number, proto = IPPROTO_TCP, forwarding = FORWARD_DSR): ProbeEntry {
  const { family, bytes } = parseAddress(address);
  return { family, address: bytes, port: 80, proto, localPort, backendId, forwarding };
}

/** A ProbeMap in memory, counting its writes. */
function memoryMap(): ProbeMap & { writes: number } {
  const entries = new Map<string, Buffer>();
  const map = {
    writes: 0,
    update(key: Buffer, value: Buffer) {
      map.writes++;
      entries.set(key.toString('hex'), Buffer.from(value));
    },
    delete(key: Buffer) {
      map.writes++;
      return entries.delete(key.toString('hex'));
    },
    lookup: (key: Buffer) => entries.get(key.toString('hex')) ?? null,
    keys: () => [...entries.keys()].map((hex) => Buffer.from(hex, 'hex')),
  };
  return map;
}

const a = entry('198.19.0.1', PROBE_PORT_MIN, 3);
const b = entry('198.19.0.1', PROBE_PORT_MIN, 3, IPPROTO_UDP);
const c = entry('2001:db8:f::1', PROBE_PORT_MIN + 1, 4, IPPROTO_TCP, FORWARD_IPIP);

describe('probeDifferences', () => {
  test('none when the map holds what is wanted, in any order', () => {
    expect(probeDifferences([a, b, c], [c, a, b])).toEqual([]);
    expect(probeDifferences([], [])).toEqual([]);
  });

  test('a missing, a changed and an extra entry, each named', () => {
    const moved = { ...a, backendId: 9 };
    const stray = entry('198.19.0.2', PROBE_PORT_MIN + 5, 7);
    expect(probeDifferences([a, b, c], [moved, c, stray])).toEqual([
      { kind: 'changed', entry: a, found: moved },
      { kind: 'missing', entry: b },
      { kind: 'extra', entry: stray },
    ]);
    expect(probeDifferences([c], [{ ...c, forwarding: FORWARD_DSR }])).toEqual([
      { kind: 'changed', entry: c, found: { ...c, forwarding: FORWARD_DSR } },
    ]);
  });

  test('as text: each entry by protocol, destination, local port, backend and forwarding; the rest counted', () => {
    const text = probeDifferencesText([
      { kind: 'missing', entry: a },
      { kind: 'changed', entry: c, found: { ...c, backendId: 5 } },
    ]);
    expect(text).toBe(
      `missing tcp 198.19.0.1:80 from port ${PROBE_PORT_MIN} -> backend 3 by dsr; ` +
        `changed tcp [2001:db8:f::1]:80 from port ${PROBE_PORT_MIN + 1} -> backend 5 by ipip, ` +
        `wanted tcp [2001:db8:f::1]:80 from port ${PROBE_PORT_MIN + 1} -> backend 4 by ipip`,
    );
    const many = [a, b, c, a, b].map((e) => ({ kind: 'extra' as const, entry: e }));
    expect(probeDifferencesText(many)).toMatch(/; and 2 more$/);
  });
});

describe('repairProbes', () => {
  test('rewrites only a map that differs, back to exactly what is wanted', () => {
    const map = memoryMap();
    writeProbes(map, [a, b, c]);
    const written = map.writes;
    expect(repairProbes(map, [a, b, c])).toEqual([]);
    expect(map.writes).toBe(written);

    map.delete(map.keys()[0]!);
    writeProbes(map, [...readProbes(map), entry('198.19.0.9', PROBE_PORT_MIN + 9, 1)]);
    expect(repairProbes(map, [a, b, c]).map((d) => d.kind)).toEqual(['missing', 'extra']);
    expect(probeDifferences([a, b, c], readProbes(map))).toEqual([]);
  });

  test('nothing wanted yet (no write since start): an adopted map is left as it is', () => {
    const map = memoryMap();
    writeProbes(map, [a]);
    expect(repairProbes(map, null)).toEqual([]);
    expect(readProbes(map)).toEqual([a]);
  });
});

describe('repairProbeEntries', () => {
  test('a repair is counted as a dataplane internal error naming the entries; an intact map counts nothing', () => {
    const map = memoryMap();
    const wanted = [a, b];
    writeProbes(map, wanted);
    const errors = new InternalErrors();
    const dp = { repairProbes: () => repairProbes(map, wanted) };
    repairProbeEntries(dp, errors);
    expect(errors.list()).toEqual([]);

    map.delete(map.keys()[1]!);
    repairProbeEntries(dp, errors);
    expect(errors.list()).toEqual([
      expect.objectContaining({
        component: 'dataplane',
        count: 1,
        lastMessage: expect.stringMatching(
          /^xlb_probes_v1 differed from the health checks' probe entries and was rewritten: missing udp 198\.19\.0\.1:80/,
        ),
      }),
    ]);
    expect(readProbes(map)).toHaveLength(2);
    repairProbeEntries(dp, errors);
    expect(errors.list()[0]!.count).toBe(1);
  });
});
