/**
 * A real `xlb serve` process (generic XDP on a veth in a namespace) against requests
 * whose every string field is arbitrary Unicode: after every accepted request the
 * daemon is alive and ready, and a restart from its state file comes up ready with
 * the same VIPs. The host rules (the host's own addresses, connected prefixes' network
 * and broadcast addresses) are checked against the same process; records they rule out
 * (a state file, an address the host gains later) are reported in status, never fatal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ApiClient, type ApiResponse, vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { packagePath } from '../control/paths.js';
import { Namespaces, nsRun } from '../scripts/lab/netns.js';

const CLI = packagePath('dist/control/cli/main.js');
const namespaces = new Namespaces('prop');
let ns: string;
let dir: string;
let bpffs: string;
let daemon: { child: ChildProcess; api: ApiClient; stderr: () => string } | null = null;

/** Starts `xlb serve` in the namespace; resolves once /readyz is 200, or with the exit code and stderr if it stops first. */
async function startDaemon(pins = bpffs): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${ns}`,
      process.execPath,
      CLI,
      'serve',
      '--iface',
      'eth0',
      '--xdp-mode',
      'generic',
      '--api',
      `unix:${join(dir, 'api.sock')}`,
      '--state',
      join(dir, 'state.json'),
      '--bpffs',
      pins,
      '--log-level',
      'silent',
      '--mutations-per-minute',
      '1000000',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'close');
  const api = new ApiClient(`unix:${join(dir, 'api.sock')}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await exited;
      return { code: child.exitCode, stderr };
    }
    if (
      (await api.request('GET', '/readyz').then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`xlb serve did not become ready in 30 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  daemon = { child, api, stderr: () => stderr };
  return { code: null, stderr };
}

async function stopDaemon(): Promise<void> {
  if (!daemon) return;
  const { child } = daemon;
  daemon = null;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

const request = <T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> =>
  daemon!.api.request<T>(method, path, body);

/** The daemon is running and answers /readyz with 200. */
async function assertReady(after: string): Promise<void> {
  const status = await request('GET', '/readyz').then(
    (r) => r.status,
    (error: Error) => `unreachable (${error.message})`,
  );
  const { child, stderr } = daemon!;
  expect(
    child.exitCode === null && child.signalCode === null && status === 200,
    `after ${after}: /readyz ${status}, exit ${child.exitCode ?? child.signalCode}: ${stderr()}`,
  ).toBe(true);
}

/** The configuration part of /v1/vips (health and ring membership are observations, not configuration). */
async function configuredVips(): Promise<unknown> {
  const { vips } = (await request<{ vips: VipView[] }>('GET', '/v1/vips')).body;
  return vips.map(({ panic, ringBackends, backends, ...vip }) => ({
    ...vip,
    backends: backends.map((b) => ({ address: b.address, weight: b.weight, state: b.state })),
  }));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xlb-prop-'));
  bpffs = `/sys/fs/bpf/${namespaces.prefix}`;
  ns = namespaces.create('lb');
  nsRun(ns, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  for (const link of ['eth0', 'eth1']) nsRun(ns, 'ip', ['link', 'set', link, 'up']);
  nsRun(ns, 'ip', ['addr', 'add', '198.18.0.1/24', 'dev', 'eth0']);
  nsRun(ns, 'ip', ['-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'eth0', 'nodad']);
  const started = await startDaemon();
  if (started.code !== null) throw new Error(`xlb serve exited ${started.code}: ${started.stderr}`);
}, 60_000);

afterAll(async () => {
  await stopDaemon();
  namespaces.cleanup();
  rmSync(bpffs, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** After a failed run (the shrinker runs more), a daemon that stopped starts again on an empty state. */
async function freshDaemonIfDown(): Promise<void> {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) return;
  daemon = null;
  rmSync(join(dir, 'state.json'), { force: true });
  const started = await startDaemon();
  if (started.code !== null) throw new Error(`xlb serve exited ${started.code}: ${started.stderr}`);
}

async function deleteAllVips(): Promise<void> {
  const { vips } = (await request<{ vips: VipView[] }>('GET', '/v1/vips')).body;
  for (const v of vips) expect((await request('DELETE', vipPath(v.protocol, v.address, v.port))).status).toBe(204);
}

describe('the host rules, on a real daemon', () => {
  test.each([
    ['a VIP on an address of the host', vipPath('tcp', '198.18.0.1', 80), /198\.18\.0\.1 is an address of this host \(eth0\)/],
    ['an IPv6 VIP on an address of the host', vipPath('tcp', '2001:db8::1', 80), /2001:db8::1 is an address of this host \(eth0\)/],
    [
      'a VIP on the directed broadcast of a connected prefix',
      vipPath('tcp', '198.18.0.255', 80),
      /broadcast address of the connected prefix 198\.18\.0\.0\/24/,
    ],
    [
      'a VIP on the network address of a connected prefix',
      vipPath('tcp', '198.18.0.0', 80),
      /network address of the connected prefix 198\.18\.0\.0\/24/,
    ],
  ])('%s is a 409', async (_, path, message) => {
    const before = await configuredVips();
    const res = await request<{ error: { message: string } }>('PUT', path, { forwarding: 'ipip' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(message);
    expect(await configuredVips()).toEqual(before);
  });

  test.each([
    [
      'a backend on the directed broadcast of a connected prefix',
      '198.18.0.255',
      /broadcast address of the connected prefix 198\.18\.0\.0\/24/,
    ],
    ['a backend on the network address of a connected prefix', '198.18.0.0', /network address of the connected prefix 198\.18\.0\.0\/24/],
    [
      'a backend on an address of the host',
      '198.18.0.1',
      /198\.18\.0\.1 is an address of this host \(eth0\): the balancer cannot forward to itself/,
    ],
  ])('%s is a 409', async (_, backend, message) => {
    expect((await request('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip' })).status).toBe(201);
    try {
      const res = await request<{ error: { message: string } }>('PUT', vipPath('tcp', '198.19.0.1', 80, backend), {});
      expect(res.status).toBe(409);
      expect(res.body.error.message).toMatch(message);
      expect((await configuredVips()) as { backends: unknown[] }[]).toMatchObject([{ backends: [] }]);
    } finally {
      await deleteAllVips();
    }
  });

  test('a state file with records the host rules out starts ready, applied as it is, and status names each conflict', async () => {
    await stopDaemon();
    const state = join(dir, 'state.json');
    try {
      const backends = [{ address: '198.18.0.0', id: 0, weight: 1, state: 'active' }];
      const vips = [
        { protocol: 'tcp', address: '198.18.0.1', port: 80, id: 0, forwarding: 'ipip', backends: [] },
        { protocol: 'udp', address: '198.19.0.1', port: 53, id: 1, forwarding: 'ipip', backends },
      ];
      writeFileSync(state, JSON.stringify({ version: 1, vips }));
      const res = await startDaemon();
      expect(res.code, res.stderr).toBeNull();
      const status = (await request<{ ready: boolean; conflicts: unknown[] }>('GET', '/v1/status')).body;
      expect(status.ready).toBe(true);
      expect(status.conflicts).toEqual([
        { vip: 'tcp/198.18.0.1:80', backend: null, problem: expect.stringMatching(/^198\.18\.0\.1 is an address of this host \(eth0\)/) },
        {
          vip: 'udp/198.19.0.1:53',
          backend: '198.18.0.0',
          problem: expect.stringMatching(/^198\.18\.0\.0 is the network address of the connected prefix 198\.18\.0\.0\/24/),
        },
      ]);
      expect(((await configuredVips()) as unknown[]).length).toBe(2);
    } finally {
      await stopDaemon();
      rmSync(state, { force: true });
      const restarted = await startDaemon();
      expect(restarted.code).toBeNull();
    }
  }, 60_000);

  test('an address the host gains under a running VIP shows as a conflict in status, and goes when the address does', async () => {
    const conflicts = async () => (await request<{ conflicts: { vip: string; problem: string }[] }>('GET', '/v1/status')).body.conflicts;
    expect((await request('PUT', vipPath('tcp', '198.18.0.60', 80), { forwarding: 'ipip' })).status).toBe(201);
    try {
      expect(await conflicts()).toEqual([]);
      nsRun(ns, 'ip', ['addr', 'add', '198.18.0.60/32', 'dev', 'lo']);
      await expect
        .poll(conflicts, { timeout: 10_000, interval: 100 })
        .toEqual([
          { vip: 'tcp/198.18.0.60:80', backend: null, problem: expect.stringMatching(/198\.18\.0\.60 is an address of this host \(lo\)/) },
        ]);
      nsRun(ns, 'ip', ['addr', 'del', '198.18.0.60/32', 'dev', 'lo']);
      await expect.poll(conflicts, { timeout: 10_000, interval: 100 }).toEqual([]);
    } finally {
      nsRun(ns, 'ip', ['addr', 'flush', 'dev', 'lo', 'to', '198.18.0.60/32']);
      await deleteAllVips();
    }
  }, 30_000);
});

// ---- the property ---------------------------------------------------------------

/** Any Unicode text (lone surrogates included), and printable ASCII. */
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'grapheme-ascii', maxLength: 12 }));
const junk = fc.oneof(anyText, fc.anything({ maxDepth: 1 }));
/** Mostly values that pass, sometimes ones that must not. */
const mostly = <T>(good: T[], bad: T[]) =>
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) });
const checkPath = fc.oneof(
  mostly(['/', '/healthz', '/ok?x=%20&y=1'], ['/a b', '/a\r\nb', '/\u0000', '/\u0100', '/é', '/%zz', '//x', '/#f', '/x'.repeat(600)]),
  anyText.map((text) => `/${text}`),
);
const portText = mostly(['80', '80', '80', '443', '0'], ['0x50', '1e1', '+80', '080', '80.0', ' 80', '%2080', '65536', '-1']);
const vipAddress = mostly(
  ['198.19.0.1', '198.19.0.1', '198.19.0.1', '198.19.0.2', '2001:db8:f::1'],
  ['0.0.0.0', '224.0.0.1', '::ffff:198.19.0.9', '127.0.0.1', 'fe80::1', '255.255.255.255'],
);
const backendAddress = mostly(
  ['198.18.0.11', '198.18.0.12', '2001:db8::11'],
  ['255.255.255.255', 'ff02::1', '169.254.1.1', '240.0.0.1', '::', '127.0.0.2'],
);
const checkFields = {
  port: fc.integer({ min: 1, max: 65535 }),
  timeoutMs: fc.constant(100),
  intervalMs: fc.constantFrom(100, 1000),
};
// Each type with its own options: another type's option is refused, which the mutations try.
const healthCheck = fc.oneof(
  fc.record(
    { type: fc.constant('http'), ...checkFields, path: checkPath, expectStatus: fc.constantFrom(200, 204) },
    { requiredKeys: ['type'] },
  ),
  fc.record({ type: fc.constantFrom('tcp', 'none'), ...checkFields }, { requiredKeys: ['type'] }),
);
const vipBody = fc.record(
  {
    forwarding: fc.constantFrom('ipip', 'dsr'),
    affinity: fc.constantFrom('flow', 'source-ip'),
    panicThreshold: fc.constantFrom(0, 0.5, 1),
    healthCheck,
  },
  { requiredKeys: ['forwarding', 'healthCheck'] },
);
const backendBody = fc.record(
  { weight: fc.integer({ min: 0, max: 100 }), state: fc.constantFrom('active', 'drain') },
  { requiredKeys: [] },
);
const protocol = mostly(['tcp', 'tcp', 'udp'], ['sctp', 'TCP']);
const plausible = fc.oneof(
  fc.record({ kind: fc.constant('putVip' as const), protocol, address: vipAddress, port: portText, body: vipBody }),
  // Backends join the VIP every run starts with, so accepted checks probe them; the mutations vary its key.
  fc.record({
    kind: fc.constant('putBackend' as const),
    protocol: fc.constant('tcp'),
    address: fc.constant('198.19.0.1'),
    port: fc.constant('80'),
    backend: backendAddress,
    body: backendBody,
  }),
);
type Command = {
  kind: 'putVip' | 'putBackend';
  protocol: unknown;
  address: unknown;
  port: unknown;
  backend?: unknown;
  body: Record<string, unknown>;
};

/** Every string (and number) field a request has, as a path into the command. */
const FIELDS = [
  'protocol',
  'address',
  'port',
  'backend',
  'body.forwarding',
  'body.affinity',
  'body.panicThreshold',
  'body.healthCheck.type',
  'body.healthCheck.port',
  'body.healthCheck.path',
  'body.healthCheck.expectStatus',
  'body.weight',
  'body.state',
];

function withField(command: Command, path: string, value: unknown): Command {
  const copy = structuredClone(command) as Record<string, unknown>;
  const keys = path.split('.');
  let target = copy;
  for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
  target[keys.at(-1)!] = value;
  return copy as Command;
}

/** Plausible requests, and plausible requests with one field replaced by anything at all. */
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: plausible },
  {
    weight: 2,
    arbitrary: fc.tuple(plausible, fc.constantFrom(...FIELDS), junk).map(([command, path, value]) => withField(command, path, value)),
  },
);

/** Path segments are percent-encoded, so any text reaches the router (and the validator) as itself; a lone surrogate cannot be, so it goes as U+FFFD. */
const segment = (value: unknown) => (String(value) as string & { toWellFormed(): string }).toWellFormed();
const urlOf = (c: Command) =>
  vipPath(segment(c.protocol), segment(c.address), segment(c.port), c.kind === 'putBackend' ? segment(c.backend) : undefined);

describe('arbitrary Unicode in every field, sent to a real daemon', () => {
  test('after every accepted request the daemon is ready; a restart from its state file is ready with the same VIPs', async () => {
    let accepted = 0;
    // No shrinking (endOnFailure): each step would restart the daemon; the failure names its request.
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 8, maxLength: 16 }), async (commands) => {
        await freshDaemonIfDown();
        await deleteAllVips();
        // A VIP with a backend: a check any later request sets on it starts probing at once.
        const base = { protocol: 'tcp', address: '198.19.0.1', port: '80' };
        const setup: Command[] = [
          { kind: 'putVip', ...base, body: { forwarding: 'ipip', healthCheck: { type: 'none' } } },
          { kind: 'putBackend', ...base, backend: '198.18.0.11', body: {} },
        ];
        for (const command of [...setup, ...commands]) {
          const what = `PUT ${urlOf(command)} ${JSON.stringify(command.body)}`;
          const res = await request('PUT', urlOf(command), command.body);
          expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
          if (res.status >= 300) continue;
          accepted++;
          await assertReady(what);
        }
        const before = await configuredVips();
        await stopDaemon();
        const restarted = await startDaemon();
        expect(restarted, 'restart from the state file').toMatchObject({ code: null });
        expect(await configuredVips()).toEqual(before);
      }),
      { numRuns: 5, seed: 0x1c0de, endOnFailure: true },
    );
    expect(accepted).toBeGreaterThan(20);
  }, 120_000);
});
