/**
 * What each versioned map name stands for, computed from the compiled objects: the
 * map's type, flags, key and value from BTF with member names; for a counter map, the
 * enum whose values index it; for the connection table, the table hash of fixed flows.
 * test/map-layouts.txt records it per name, and test/btf-layout.test.ts compares.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as codec from '../../control/dataplane/codec.js';
import { tableHash } from '../../control/dataplane/hash.js';
import { type Flow, flowKey } from './fixture.js';
import { flow4, flow6 } from './frames.js';

export interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  encoding?: string;
  members?: { name: string; type_id: number; bits_offset: number }[];
  vars?: { type_id: number }[];
  values?: { name: string; val: number }[];
}

export const btfTypes = (object: string): BtfType[] =>
  JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' })).types;

/** Holds xlb.h types that no map of the programs holds (bpf/tests/btf_types.bpf.c). */
export const TYPES_OBJECT = codec.BALANCER_OBJECT.replace('xlb_balancer', 'btf_types');

/** An enum of xlb.h as its members' names and values, in order of value. */
export function btfEnum(name: string): { name: string; val: number }[] {
  const found = btfTypes(TYPES_OBJECT).find((t) => t.kind === 'ENUM' && t.name === name);
  if (!found) throw new Error(`enum ${name} not in ${TYPES_OBJECT}`);
  return [...found.values!].sort((a, b) => a.val - b.val);
}

/**
 * Each map of an object (the .maps section) with its layout: type, flags, key and
 * value (the inner map's, for a map of maps) as sizes, offsets, member names and
 * integer kinds. Type names are left out, and so is max_entries, which the daemon
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
        return `${t.kind === 'UNION' ? 'union' : 'struct'}${t.size}{${t.members!.map((m) => `${m.bits_offset / 8}:${m.name}:${layout(m.type_id)}`).join(',')}}`;
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

/** The connection table's hash key for the recorded flows: xlb_config.flow_key, fixed. */
export const TABLE_HASH_KEY = Buffer.from(Array.from({ length: codec.configCodec.fields.flow_key.bytes }, (_, i) => (i * 37 + 11) & 0xff));

/** Flows whose table hash the connection table's record holds: one per family, which the hash takes apart. */
export const TABLE_HASH_FLOWS: readonly Flow[] = [flow4(), flow6()];

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** How the connection table's entries are computed: the fixed flows' bucket (before the mask), tag and check. */
function tableHashVector(): string {
  const flows = TABLE_HASH_FLOWS.map((flow) => {
    const { bucket, tag, check } = tableHash(flowKey(flow), TABLE_HASH_KEY);
    return `${flow.src} ${flow.sport}>${flow.dst} ${flow.dport}=bucket ${hex(bucket)} tag ${hex(tag)} check ${hex(check)}`;
  });
  return `table_hash(key ${TABLE_HASH_KEY.toString('hex')}: ${flows.join(', ')})`;
}

const enumLayout = (name: string) =>
  `index=enum ${name}{${btfEnum(name)
    .map((m) => `${m.name}=${m.val}`)
    .join(',')}}`;

/** What a map's entries mean beyond their layout: the enum indexing a counter map, the table hash. */
const MEANINGS: Record<string, () => string> = {
  [codec.MAPS.counters]: () => enumLayout('xlb_outcome'),
  [codec.MAPS.decapCounters]: () => enumLayout('xlb_decap_outcome'),
  [codec.MAPS.flows]: tableHashVector,
};

/** Every map of both programs with what its name stands for, as test/map-layouts.txt records it. */
export function mapRecords(): Map<string, string> {
  const layouts = new Map([...mapLayouts(codec.BALANCER_OBJECT), ...mapLayouts(codec.DECAP_OBJECT)]);
  return new Map([...layouts].map(([name, layout]) => [name, [layout, MEANINGS[name]?.()].filter(Boolean).join(' ')]));
}

/** test/map-layouts.txt: each line a versioned name and what it stands for; # starts a comment. */
export function recordedLayouts(): { name: string; record: string }[] {
  const text = readFileSync(new URL('../map-layouts.txt', import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => {
      const space = line.indexOf(' ');
      return { name: line.slice(0, space), record: line.slice(space + 1) };
    });
}
