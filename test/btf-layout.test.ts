/**
 * The TypeScript codecs must match the compiled objects' BTF (sizes and member
 * offsets), the constants bpf/include/xlb.h, the forwarding registry the XLB_FORWARD_*
 * codes, and the map names the objects' maps. What each map's versioned name stands
 * for is recorded in test/map-layouts.txt, so a change to a map's layout or meaning
 * that does not bump that map's version fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import * as codec from '../control/dataplane/codec.js';
import { forwardingModes } from '../control/forwarding/registry.js';
import { btfEnum, type BtfType, btfTypes, mapRecords, recordedLayouts, TYPES_OBJECT } from './lib/map-layouts.js';

function btfStructs(object: string): Map<string, BtfType> {
  return new Map(
    btfTypes(object)
      .filter((t) => t.kind === 'STRUCT' && t.name)
      .map((t) => [t.name!, t]),
  );
}

function expectLayout(structCodec: { name: string; size: number; offsets: Record<string, number> }, btf: BtfType | undefined): void {
  expect(btf, `${structCodec.name} in BTF`).toBeDefined();
  expect(structCodec.size).toBe(btf!.size);
  const offsets = Object.fromEntries(btf!.members!.map((m) => [m.name, m.bits_offset / 8]));
  expect(structCodec.offsets).toEqual(offsets);
}

const header = readFileSync(new URL('../bpf/include/xlb.h', import.meta.url), 'utf8');

function define(name: string): number {
  const m = new RegExp(`#define ${name} \\(?(\\d+)u?(?: << (\\d+)\\))?`).exec(header);
  if (!m) throw new Error(`${name} not in xlb.h`);
  return m[2] ? Number(m[1]) << Number(m[2]) : Number(m[1]);
}

describe('codecs match the objects BTF', () => {
  const balancer = btfStructs(codec.BALANCER_OBJECT);
  const decap = btfStructs(codec.DECAP_OBJECT);

  test.each(codec.STRUCTS.map((c) => [c.name, c]))('struct %s', (name, structCodec) => {
    expectLayout(structCodec, balancer.get(name) ?? decap.get(name));
  });

  test('struct xlb_flow_key, which only the hashes read', () => {
    expectLayout(codec.flowKeyCodec, btfStructs(TYPES_OBJECT).get('xlb_flow_key'));
  });

  test('the decap object uses the same struct xlb_addr', () => {
    expect(decap.get('xlb_addr')?.size).toBe(codec.addrCodec.size);
  });
});

describe('constants match bpf/include/xlb.h', () => {
  test('outcome enums, in order of value', () => {
    const members = (list: readonly string[], prefix: string, count: string) => [
      ...list.map((name, val) => ({ name: `${prefix}${name.toUpperCase()}`, val })),
      { name: count, val: list.length },
    ];
    expect(btfEnum('xlb_outcome')).toEqual(members(codec.OUTCOMES, 'XLB_', 'XLB_OUTCOME_COUNT'));
    expect(btfEnum('xlb_decap_outcome')).toEqual(members(codec.DECAP_OUTCOMES, 'XLB_DECAP_', 'XLB_DECAP_OUTCOME_COUNT'));
  });

  test('connection-table entry states: empty, then FLOW_STATES in order', () => {
    expect(btfEnum('xlb_flow_state')).toEqual(
      ['empty', ...codec.FLOW_STATES].map((name, val) => ({ name: `XLB_FLOW_${name.toUpperCase()}`, val })),
    );
  });

  test("each registered forwarding mode's code is its XLB_FORWARD_* and each XLB_FORWARD_* is a mode's", () => {
    const defined = [...header.matchAll(/^#define XLB_FORWARD_([A-Z0-9_]+) (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]);
    const registered = [...forwardingModes.values()].map((mode) => [mode.name.toUpperCase().replaceAll('-', '_'), mode.code]);
    expect(Object.fromEntries(defined)).toEqual(Object.fromEntries(registered));
  });

  test('defines', () => {
    expect(define('XLB_FAMILY_V4')).toBe(codec.FAMILY_V4);
    expect(define('XLB_FAMILY_V6')).toBe(codec.FAMILY_V6);
    expect(define('XLB_VIP_F_SOURCE_AFFINITY')).toBe(codec.VIP_F_SOURCE_AFFINITY);
    expect(define('XLB_VIP_F_NO_CONNTRACK')).toBe(codec.VIP_F_NO_CONNTRACK);
    expect(define('XLB_BACKEND_F_UNHEALTHY')).toBe(codec.BACKEND_F_UNHEALTHY);
    expect(define('XLB_DEFAULT_RING_SIZE')).toBe(codec.DEFAULT_RING_SIZE);
    expect(define('XLB_DEFAULT_MAX_VIPS')).toBe(codec.DEFAULT_MAX_VIPS);
    expect(define('XLB_DEFAULT_MAX_BACKENDS')).toBe(codec.DEFAULT_MAX_BACKENDS);
    expect(define('XLB_DEFAULT_FLOWS')).toBe(codec.DEFAULT_FLOWS);
    expect(define('XLB_DEFAULT_FLOW_IDLE_TIMEOUT')).toBe(codec.DEFAULT_FLOW_IDLE_TIMEOUT);
    expect(define('XLB_CAPTURE_MAX_BYTES')).toBe(codec.CAPTURE_MAX_BYTES);
    expect(define('XLB_CAPTURE_RECEIVED')).toBe(codec.CAPTURE_RECEIVED);
    expect(define('XLB_CAPTURE_SENT')).toBe(codec.CAPTURE_SENT);
    expect(define('XLB_VIP_CACHE_BITS')).toBe(codec.VIP_CACHE_BITS);
    expect(define('XLB_FLOW_WAYS')).toBe(codec.FLOW_WAYS);
    expect(define('XLB_RING_IDS_PER_VALUE')).toBe(codec.RING_IDS_PER_VALUE);
    expect(define('XLB_PROBE_PORT_MIN')).toBe(codec.PROBE_PORT_MIN);
    expect(define('XLB_PROBE_PORT_MAX')).toBe(codec.PROBE_PORT_MAX);
  });
});

/** A map's name without its version, and the version. */
function versioned(name: string): { map: string; version: number } {
  const m = /^(xlb_[a-z0-9_]+)_v(\d+)$/.exec(name);
  if (!m) throw new Error(`${name} is no xlb_<map>_v<N>`);
  return { map: m[1]!, version: Number(m[2]) };
}

/** The kernel keeps a map's name to BPF_OBJ_NAME_LEN - 1 characters (bpftool shows those); pins keep it whole. */
const KERNEL_NAME_CHARS = 15;

describe('map names and versions', () => {
  const records = mapRecords();
  const recorded = recordedLayouts();
  const names = Object.values(codec.MAPS);

  test('MAPS names exactly the objects maps, each xlb_<map>_v<N>', () => {
    expect([...records.keys()].sort()).toEqual([...names].sort());
    for (const name of names) expect(name).toMatch(/^xlb_[a-z0-9_]+_v\d+$/);
  });

  test.each(names)('%s stands for what test/map-layouts.txt records under its name', (name) => {
    const { map, version } = versioned(name);
    const message =
      `${name} no longer stands for what test/map-layouts.txt records. Never edit a recorded line: give the map ` +
      `a new version (MAPS in control/dataplane/codec.ts and the object) and add its line:\n${map}_v${version + 1} ${records.get(name)}\n`;
    expect(records.get(name), message).toBe(recorded.find((line) => line.name === name)?.record);
  });

  test("test/map-layouts.txt: each name once; a map's name in use is its latest version; no two versions alike", () => {
    expect(new Set(recorded.map((line) => line.name)).size).toBe(recorded.length);
    for (const name of names) {
      const { map, version } = versioned(name);
      const versions = recorded.filter((line) => versioned(line.name).map === map);
      expect(Math.max(...versions.map((line) => versioned(line.name).version)), `latest recorded version of ${map}`).toBe(version);
      expect(new Set(versions.map((line) => line.record)).size, `versions of ${map} that stand for the same`).toBe(versions.length);
    }
  });

  test(`the first ${KERNEL_NAME_CHARS} characters of a name, which bpftool shows, tell the maps apart up to version 99`, () => {
    const kernelNames = names.map((name) => {
      const { map } = versioned(name);
      return new Set(Array.from({ length: 99 }, (_, i) => `${map}_v${i + 1}`.slice(0, KERNEL_NAME_CHARS)));
    });
    for (const [i, own] of kernelNames.entries())
      for (const other of kernelNames.slice(i + 1)) expect([...own].filter((name) => other.has(name))).toEqual([]);
  });
});
