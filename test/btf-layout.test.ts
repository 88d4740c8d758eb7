/**
 * The TypeScript codecs must match the compiled objects' BTF (sizes and member
 * offsets), the constants bpf/include/xlb.h, and the map names the objects' maps.
 * Each map's layout is recorded under its versioned name, so a layout change that
 * does not bump that map's version fails here.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import * as codec from '../control/dataplane/codec.js';

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  encoding?: string;
  members?: { name: string; type_id: number; bits_offset: number }[];
  vars?: { type_id: number }[];
}

const btfTypes = (object: string): BtfType[] =>
  JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' })).types;

function btfStructs(object: string): Map<string, BtfType> {
  return new Map(
    btfTypes(object)
      .filter((t) => t.kind === 'STRUCT' && t.name)
      .map((t) => [t.name!, t]),
  );
}

/**
 * Each map of an object (the .maps section) with its layout: type, flags, key and
 * value (the inner map's, for a map of maps) as sizes, offsets and integer kinds.
 * Names of types and fields are left out, and so is max_entries, which the daemon
 * sets at load time.
 */
function mapLayouts(object: string): Map<string, string> {
  const types = new Map(btfTypes(object).map((t) => [t.id, t]));
  const type = (id: number) => types.get(id)!;
  const layout = (id: number): string => {
    const t = type(id);
    switch (t.kind) {
      case 'TYPEDEF':
      case 'CONST':
      case 'VOLATILE':
        return layout(t.type_id!);
      case 'INT':
        return `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size! * 8}`;
      case 'ENUM':
        return `e${t.size! * 8}`;
      case 'ARRAY':
        return `${layout(t.type_id!)}[${t.nr_elems}]`;
      case 'PTR':
        return `*${layout(t.type_id!)}`;
      case 'STRUCT':
      case 'UNION':
        return `${t.kind === 'UNION' ? 'union' : 'struct'}${t.size}{${t.members!.map((m) => `${m.bits_offset / 8}:${layout(m.type_id)}`).join(',')}}`;
      default:
        throw new Error(`BTF kind ${t.kind} in a map's layout`);
    }
  };
  // A map definition: __uint(type, N) is int (*type)[N], __type(key, T) is T *key, and
  // __array(values, struct inner) is struct inner *values[].
  const definition = (id: number): string =>
    type(id)
      .members!.filter((m) => m.name !== 'max_entries')
      .map((m) => {
        const target = type(type(m.type_id).type_id!);
        if (m.name === 'values') return `values=(${definition(target.type_id!)})`;
        if (m.name === 'type' || m.name === 'map_flags') return `${m.name}=${target.nr_elems}`;
        return `${m.name}=${layout(target.id)}`;
      })
      .join(' ');
  const maps = btfTypes(object).find((t) => t.kind === 'DATASEC' && t.name === '.maps')!;
  return new Map(maps.vars!.map(({ type_id }) => [type(type_id).name!, definition(type(type_id).type_id!)]));
}

/**
 * The layout each map's name stands for (type and flags as numbers, structs as size
 * and offset:member). Another layout takes another version in the name, and its line
 * here replaces the old one.
 */
const MAP_LAYOUTS: Record<string, string> = {
  xlb_vips_v3: 'type=1 map_flags=1 key=struct20{0:u8[16],16:u16,18:u8,19:u8} value=struct12{0:u32,4:u32,8:u8,9:u8[3]}',
  xlb_vipaddr_v3: 'type=1 map_flags=1 key=struct20{0:u8[16],16:u8,17:u8[3]} value=u32',
  xlb_rings_v3: 'type=12 key=u32 values=(type=2 map_flags=1024 key=u32 value=u32[2])',
  xlb_backends_v3: 'type=2 key=u32 value=struct28{0:u8[16],16:u8[6],22:u8,23:u8,24:u32}',
  xlb_flows_v3: 'type=2 map_flags=1024 key=u32 value=struct64{0:struct16{0:u32,4:u32,8:u32,12:u16,14:u16}[4]}',
  xlb_config_v3:
    'type=2 key=u32 value=struct80{0:u32,4:u32,8:u16,10:u8[6],16:u8[4],20:u8[16],36:u8,37:u8,38:u8[2],40:u32,44:u32,48:u32[8]}',
  xlb_vipcache_v3:
    'type=6 key=u32 value=struct40{0:struct20{0:u8[16],16:u16,18:u8,19:u8},20:struct12{0:u32,4:u32,8:u8,9:u8[3]},32:u32,36:u32}',
  xlb_counters_v3: 'type=6 key=u32 value=struct16{0:u64,8:u64}',
  xlb_vipstat_v3: 'type=6 key=u32 value=struct32{0:u64,8:u64,16:u64,24:u64}',
  xlb_bestat_v3: 'type=6 key=u32 value=struct16{0:u64,8:u64}',
  xlb_decap_v3: 'type=1 map_flags=1 key=struct20{0:u8[16],16:u8,17:u8[3]} value=u32',
  xlb_dcounter_v3: 'type=6 key=u32 value=struct16{0:u64,8:u64}',
};

/** Holds xlb.h types that no map of the programs holds (bpf/tests/btf_types.bpf.c). */
const TYPES_OBJECT = codec.BALANCER_OBJECT.replace('xlb_balancer', 'btf_types');

function expectLayout(structCodec: { name: string; size: number; offsets: Record<string, number> }, btf: BtfType | undefined): void {
  expect(btf, `${structCodec.name} in BTF`).toBeDefined();
  expect(structCodec.size).toBe(btf!.size);
  const offsets = Object.fromEntries(btf!.members!.map((m) => [m.name, m.bits_offset / 8]));
  expect(structCodec.offsets).toEqual(offsets);
}

const header = readFileSync(new URL('../bpf/include/xlb.h', import.meta.url), 'utf8');

function enumNames(name: string): string[] {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(header)![1]!;
  return [...body.matchAll(/^\s*(XLB_[A-Z0-9_]+)/gm)].map((m) => m[1]!).filter((n) => !n.endsWith('_COUNT'));
}

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
  test('outcome enums, in order', () => {
    const names = (list: readonly string[], prefix: string) => list.map((n) => `${prefix}${n.toUpperCase()}`);
    expect(enumNames('xlb_outcome')).toEqual(names(codec.OUTCOMES, 'XLB_'));
    expect(enumNames('xlb_decap_outcome')).toEqual(names(codec.DECAP_OUTCOMES, 'XLB_DECAP_'));
  });

  test('defines', () => {
    expect(define('XLB_FAMILY_V4')).toBe(codec.FAMILY_V4);
    expect(define('XLB_FAMILY_V6')).toBe(codec.FAMILY_V6);
    expect(define('XLB_FORWARD_DSR')).toBe(codec.FORWARD_DSR);
    expect(define('XLB_FORWARD_IPIP')).toBe(codec.FORWARD_IPIP);
    expect(define('XLB_VIP_F_SOURCE_AFFINITY')).toBe(codec.VIP_F_SOURCE_AFFINITY);
    expect(define('XLB_VIP_F_NO_CONNTRACK')).toBe(codec.VIP_F_NO_CONNTRACK);
    expect(define('XLB_BACKEND_F_UNHEALTHY')).toBe(codec.BACKEND_F_UNHEALTHY);
    expect(define('XLB_DEFAULT_RING_SIZE')).toBe(codec.DEFAULT_RING_SIZE);
    expect(define('XLB_DEFAULT_MAX_VIPS')).toBe(codec.DEFAULT_MAX_VIPS);
    expect(define('XLB_DEFAULT_MAX_BACKENDS')).toBe(codec.DEFAULT_MAX_BACKENDS);
    expect(define('XLB_DEFAULT_FLOWS')).toBe(codec.DEFAULT_FLOWS);
    expect(define('XLB_VIP_CACHE_BITS')).toBe(codec.VIP_CACHE_BITS);
    expect(define('XLB_FLOW_WAYS')).toBe(codec.FLOW_WAYS);
    expect(define('XLB_RING_IDS_PER_VALUE')).toBe(codec.RING_IDS_PER_VALUE);
  });
});

describe('map names and versions', () => {
  const layouts = new Map([...mapLayouts(codec.BALANCER_OBJECT), ...mapLayouts(codec.DECAP_OBJECT)]);

  test('MAPS names exactly the objects maps, each xlb_<map>_v<N> with its layout recorded', () => {
    expect([...layouts.keys()].sort()).toEqual(Object.values(codec.MAPS).sort());
    expect(Object.keys(MAP_LAYOUTS).sort()).toEqual(Object.values(codec.MAPS).sort());
    for (const name of Object.values(codec.MAPS)) expect(name).toMatch(/^xlb_[a-z0-9_]+_v\d+$/);
  });

  test.each(Object.values(codec.MAPS))('%s has the layout its version stands for', (name) => {
    expect(layouts.get(name), `${name}: another layout needs another version in its name`).toBe(MAP_LAYOUTS[name]);
  });
});
