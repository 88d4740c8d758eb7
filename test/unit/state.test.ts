/**
 * The desired state's file form: saved from per-VIP pieces that must never go stale,
 * and loaded (from the file or etcd) only when every rule holds.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deleteBackend, deleteVip, emptyState, putBackend, putVip } from '../../control/state/desired.js';
import { hostConflicts } from '../../control/state/invariants.js';
import { backendSpecSchema, stateFileSchema, type VipKey, vipSpecSchema } from '../../control/state/schema.js';
import { readStateFile, stateText, writeStateFile } from '../../control/state/state-file.js';
import { EtcdStateStore } from '../../control/state/etcd-store.js';

const limits = { maxVips: 16, maxBackends: 64 };
const key = (n: number): VipKey => ({ protocol: 'tcp', address: `198.19.0.${n}`, port: 80 });

test('the saved text is JSON.stringify of the state after every kind of change', () => {
  let state = emptyState();
  const check = () => expect(stateText(state)).toBe(JSON.stringify(state));
  check();
  for (const n of [1, 2, 3]) {
    state = putVip(state, key(n), vipSpecSchema.parse({ forwarding: 'dsr' }), limits).state;
    check();
  }
  for (const b of [1, 2]) {
    state = putBackend(state, key(2), `198.18.0.${b}`, backendSpecSchema.parse({}), limits).state;
    check();
  }
  state = putBackend(state, key(2), '198.18.0.1', backendSpecSchema.parse({ weight: 5, state: 'drain' }), limits).state;
  check();
  state = putVip(state, key(3), vipSpecSchema.parse({ forwarding: 'ipip' }), limits).state;
  check();
  state = deleteBackend(state, key(2), '198.18.0.2');
  check();
  state = deleteVip(state, key(1));
  check();
  expect(JSON.parse(stateText(state)).vips.map((v: { address: string }) => v.address)).toEqual(['198.19.0.2', '198.19.0.3']);
});

// ---- the loader's rules: the state file and the etcd value --------------------

const vip = (id: number, address: string, extra: Record<string, unknown> = {}) => ({
  protocol: 'tcp',
  address,
  port: 80,
  id,
  forwarding: 'ipip',
  backends: [],
  ...extra,
});
const backend = (id: number, address: string) => ({ address, id, weight: 1, state: 'active' });

/** Each rule: a state that breaks it, and the record and rule the error names. */
const broken: [string, unknown[], RegExp][] = [
  [
    'two VIPs with the same id',
    [vip(0, '198.19.0.1'), vip(0, '198.19.0.2')],
    /vips\[1\] \(tcp\/198\.19\.0\.2:80\): id 0 is already held by vips\[0\] \(tcp\/198\.19\.0\.1:80\)/,
  ],
  [
    'two VIPs with the same protocol/address/port',
    [vip(0, '198.19.0.1'), vip(1, '198.19.0.1')],
    /vips\[1\] \(tcp\/198\.19\.0\.1:80\): the same protocol\/address\/port as vips\[0\]/,
  ],
  [
    'the same VIP written two ways',
    [vip(0, '2001:db8:f::1'), vip(1, '2001:0db8:f:0::1')],
    /vips\[1\] \(tcp\/\[2001:db8:f::1\]:80\): the same protocol\/address\/port as vips\[0\]/,
  ],
  [
    'one backend id in two VIPs',
    [vip(0, '198.19.0.1', { backends: [backend(3, '198.18.0.11')] }), vip(1, '198.19.0.2', { backends: [backend(3, '198.18.0.12')] })],
    /vips\[1\]\.backends\[0\] \(198\.18\.0\.12\): id 3 is already held by vips\[0\]\.backends\[0\] \(198\.18\.0\.11\)/,
  ],
  [
    'one backend address twice in a VIP',
    [vip(0, '198.19.0.1', { backends: [backend(0, '198.18.0.11'), backend(1, '198.18.0.11')] })],
    /vips\[0\]\.backends\[1\] \(198\.18\.0\.11\): the same address as vips\[0\]\.backends\[0\]/,
  ],
  [
    'a dsr IPv4 VIP with an IPv6 backend',
    [vip(0, '198.19.0.1', { forwarding: 'dsr', backends: [backend(0, '2001:db8::11')] })],
    /vips\[0\]\.backends\[0\] \(2001:db8::11\): dsr needs backends of the VIP's family/,
  ],
  [
    'a backend at the VIP address',
    [vip(0, '198.19.0.1', { backends: [backend(0, '198.19.0.1')] })],
    /vips\[0\]\.backends\[0\] \(198\.19\.0\.1\): backend 198\.19\.0\.1 is the VIP's own address/,
  ],
  [
    'an ipip IPv6 VIP with an IPv4 backend',
    [vip(0, '2001:db8:f::1', { backends: [backend(0, '198.18.0.11')] })],
    /vips\[0\]\.backends\[0\] \(198\.18\.0\.11\): an IPv6 VIP cannot be tunnelled to IPv4 backend/,
  ],
  [
    'a port-0 VIP with a tcp check and no check port',
    [vip(0, '198.19.0.1', { port: 0, healthCheck: { type: 'tcp' } })],
    /vips\[0\] \(tcp\/198\.19\.0\.1:0\): healthCheck\.port: required when the VIP takes any port \(port 0\)/,
  ],
  [
    'a path for a check that sends no probe',
    [vip(0, '198.19.0.1', { healthCheck: { type: 'none', via: 'direct' } })],
    /vips\[0\]\.healthCheck\.via: a none check sends no probe, so it has no path to choose/,
  ],
  [
    'a lone surrogate in a udp check payload',
    [vip(0, '198.19.0.1', { protocol: 'udp', healthCheck: { type: 'udp', send: 'dns\udc00' } })],
    /vips\[0\]\.healthCheck\.send: U\+DC00 at position 3 is a lone surrogate/,
  ],
  [
    'a VIP id beyond --max-vips',
    [vip(16, '198.19.0.1')],
    /vips\[0\] \(tcp\/198\.19\.0\.1:80\): id 16 is beyond the 16 VIPs this data plane holds/,
  ],
  [
    'a backend id beyond --max-backends',
    [vip(0, '198.19.0.1', { backends: [backend(64, '198.18.0.11')] })],
    /vips\[0\]\.backends\[0\] \(198\.18\.0\.11\): id 64 is beyond the 64 backends/,
  ],
  ['a multicast VIP', [vip(0, '224.0.0.1')], /vips\[0\]\.address: 224\.0\.0\.1 is a multicast address/],
  [
    'a broadcast backend',
    [vip(0, '198.19.0.1', { backends: [backend(0, '255.255.255.255')] })],
    /vips\[0\]\.backends\[0\]\.address: 255\.255\.255\.255 is the limited broadcast address/,
  ],
  [
    'an IPv4-mapped VIP',
    [vip(0, '::ffff:198.19.0.9')],
    /vips\[0\]\.address: ::ffff:198\.19\.0\.9 is an IPv4-mapped IPv6 address: use the IPv4 form 198\.19\.0\.9/,
  ],
  ['a port as a string', [vip(0, '198.19.0.1', { port: '80' })], /vips\[0\]\.port: /],
  [
    'a check path with a space',
    [vip(0, '198.19.0.1', { healthCheck: { type: 'http', path: '/a b' } })],
    /vips\[0\]\.healthCheck\.path: character U\+0020 at position 2 is not allowed/,
  ],
];

describe('a state that breaks a rule is refused, naming the record and the rule', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xlb-state-rules-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(broken)('state file: %s', (_, vips, message) => {
    const path = join(dir, 'state.json');
    writeFileSync(path, JSON.stringify({ version: 1, vips }));
    expect(() => readStateFile(path, limits)).toThrow(message);
    expect(() => readStateFile(path, limits)).toThrow(/^state file .*state\.json: /);
  });

  test.each(broken)('etcd value: %s', async (_, vips, message) => {
    const store = new EtcdStateStore(new URL('etcd://127.0.0.1:2379/xlb-test'), limits);
    try {
      expect(() => store.decode(JSON.stringify({ version: 1, vips }))).toThrow(message);
    } finally {
      await store.close();
    }
  });

  test('the same states with the rule kept load', () => {
    const path = join(dir, 'good.json');
    const vips = [
      vip(0, '198.19.0.1', { forwarding: 'dsr', backends: [backend(0, '198.18.0.11'), backend(1, '198.18.0.12')] }),
      vip(1, '198.19.0.1', { protocol: 'udp' }),
      vip(2, '2001:db8:f::1', { port: 0, healthCheck: { type: 'tcp', port: 8080 }, backends: [backend(2, '2001:db8::11')] }),
      vip(15, '198.19.0.2', { backends: [backend(63, '2001:db8::11'), backend(3, '198.18.0.11')] }),
    ];
    writeFileSync(path, JSON.stringify({ version: 1, vips }));
    expect(readStateFile(path, limits).vips.map((v) => v.id)).toEqual([0, 1, 2, 15]);
  });

  test('a directory where the state file should be is named for what it is', () => {
    expect(() => readStateFile(dir, limits)).toThrow(`state file ${dir}: not a regular file (a directory)`);
  });
});

describe('the host rules', () => {
  const host = {
    own: new Map([['198.18.0.1', 'eth0']]),
    prefixEnds: new Map([
      ['198.18.0.0', { end: 'network' as const, prefix: '198.18.0.0/24' }],
      ['198.18.0.255', { end: 'broadcast' as const, prefix: '198.18.0.0/24' }],
    ]),
  };
  test.each([
    [
      'a VIP on an address of the host',
      [vip(0, '198.18.0.1')],
      { vip: 'tcp/198.18.0.1:80', backend: null },
      /^198\.18\.0\.1 is an address of this host \(eth0\): a VIP must be/,
    ],
    [
      'a VIP on a directed broadcast',
      [vip(0, '198.18.0.255')],
      { vip: 'tcp/198.18.0.255:80', backend: null },
      /^198\.18\.0\.255 is the broadcast address of the connected prefix 198\.18\.0\.0\/24/,
    ],
    [
      'a VIP on a network address',
      [vip(0, '198.18.0.0')],
      { vip: 'tcp/198.18.0.0:80', backend: null },
      /^198\.18\.0\.0 is the network address of the connected prefix 198\.18\.0\.0\/24/,
    ],
    [
      'a backend on a directed broadcast',
      [vip(0, '198.19.0.1', { backends: [backend(0, '198.18.0.255')] })],
      { vip: 'tcp/198.19.0.1:80', backend: '198.18.0.255' },
      /broadcast address/,
    ],
    [
      'a backend on a network address',
      [vip(0, '198.19.0.1', { backends: [backend(0, '198.18.0.0')] })],
      { vip: 'tcp/198.19.0.1:80', backend: '198.18.0.0' },
      /network address/,
    ],
    [
      'a backend on an address of the host',
      [vip(0, '198.19.0.1', { backends: [backend(0, '198.18.0.1')] })],
      { vip: 'tcp/198.19.0.1:80', backend: '198.18.0.1' },
      /cannot forward to itself/,
    ],
  ])('%s is a conflict naming the record and the rule', (_, vips, record, problem) => {
    const state = stateFileSchema.parse({ version: 1, vips });
    expect(hostConflicts(state, host)).toEqual([{ ...record, problem: expect.stringMatching(problem) }]);
  });

  test('other addresses pass', () => {
    const state = stateFileSchema.parse({ version: 1, vips: [vip(0, '198.18.0.2', { backends: [backend(0, '198.18.0.254')] })] });
    expect(hostConflicts(state, host)).toEqual([]);
  });
});

test('a state file that cannot be written leaves no temporary copy beside it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-state-write-'));
  try {
    // A directory with an entry where the file goes: the rename fails after the copy is written.
    mkdirSync(join(dir, 'state.json', 'x'), { recursive: true });
    expect(() => writeStateFile(join(dir, 'state.json'), emptyState())).toThrow();
    expect(readdirSync(dir)).toEqual(['state.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
