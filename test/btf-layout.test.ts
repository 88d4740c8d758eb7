/**
 * The TypeScript codecs must match the compiled objects' BTF (sizes and member
 * offsets), and the constants must match bpf/include/xlb.h.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import * as codec from '../control/dataplane/codec.js';

interface BtfType {
  kind: string;
  name?: string;
  size?: number;
  members?: { name: string; bits_offset: number }[];
}

function btfStructs(object: string): Map<string, BtfType> {
  const dump = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' }));
  return new Map((dump.types as BtfType[]).filter((t) => t.kind === 'STRUCT' && t.name).map((t) => [t.name!, t]));
}

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
    expect(define('XLB_ABI_VERSION')).toBe(codec.ABI_VERSION);
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

  test('map names carry the ABI version and exist in the objects', () => {
    const mapNames = (object: string) =>
      JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' }))
        .types.filter((t: BtfType & { vars?: unknown }) => t.kind === 'VAR')
        .map((t: BtfType) => t.name);
    const inObjects = new Set([...mapNames(codec.BALANCER_OBJECT), ...mapNames(codec.DECAP_OBJECT)]);
    for (const name of Object.values(codec.MAPS)) {
      expect(name.endsWith(`_v${codec.ABI_VERSION}`)).toBe(true);
      expect(inObjects.has(name), name).toBe(true);
    }
  });
});
