/**
 * What an operator sees of the xlb command against a live API: defaults in help,
 * duration options, backend set (and its PATCH route), health reasons and panic mode,
 * IPv6 endpoints, outcome counters, one JSON shape, token-file errors and preflight
 * without a config file.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defineCheckType } from '../control/checks/check-type.js';
import { checkTypes } from '../control/checks/registry.js';
import { ApiClient, vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { startSocketDaemon, xlb, xlbCutShort, xlbThrough } from './lib/cli.js';
import type { TestDaemon } from './lib/daemon.js';
import { tcp4 } from './lib/frames.js';

/** A check type of this process's daemon whose every probe fails with a known reason (registered before the schema is built). */
const refusing = defineCheckType({
  name: 'refusing-test',
  description: 'throwaway: every probe fails',
  options: {},
  protocol: 'tcp',
  probe: async () => 'refused by the test',
});
checkTypes.set(refusing.name, refusing);

/** Polls `probe` until it returns a value, failing after `ms`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('xlb against a daemon', () => {
  let d: TestDaemon;
  let dir: string;
  let api: string;
  let client: ApiClient;
  const json = async (...args: string[]) => {
    const res = await xlb(...args, '--json', '--api', api);
    expect(res.stderr).toBe('');
    return JSON.parse(res.stdout) as Record<string, unknown>;
  };

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ d, dir, api, close } = await startSocketDaemon());
    client = new ApiClient(api);
  });
  afterAll(() => close());

  test("help shows every option's default", async () => {
    const help = (await xlb('vip', 'add', '--help')).stdout.replace(/\s+/g, ' ');
    for (const [flag, shown] of [
      ['--affinity <kind>', 'flow'],
      ['--no-conntrack', 'on'],
      ['--panic-threshold <share>', '0.5'],
      ['--health-check <type>', 'none'],
      ['--hc-interval <duration>', '2s'],
      ['--hc-timeout <duration>', '1s'],
      ['--hc-rise <n>', '2'],
      ['--hc-fall <n>', '3'],
      ['--hc-path <text>', '/'],
      ['--hc-expect-status <n>', '200'],
    ])
      expect(help).toMatch(new RegExp(`${flag} (?:(?!--)[^])*\\(default ${shown!.replace('.', '\\.')}\\)`));
    expect(help).toMatch(/--hc-port <n> [^-]*default the VIP port/);
    const backendHelp = (await xlb('backend', 'add', '--help')).stdout.replace(/\s+/g, ' ');
    expect(backendHelp).toMatch(/--weight <n> [^-]*\(default 1\)/);
    expect(backendHelp).toMatch(/--state <state> [^-]*\(default active\)/);
  });

  test('durations take 500ms, 2s, 1m and milliseconds', async () => {
    const addArgs = (...check: string[]) => [
      'vip',
      'add',
      'tcp',
      '198.19.1.1',
      '80',
      '--forwarding',
      'ipip',
      '--health-check',
      'tcp',
      ...check,
    ];
    const add = (interval: string, timeout: string) => json(...addArgs('--hc-interval', interval, '--hc-timeout', timeout));
    expect((await add('1m', '500ms')).healthCheck).toMatchObject({ type: 'tcp', intervalMs: 60_000, timeoutMs: 500 });
    expect((await add('2s', '750')).healthCheck).toMatchObject({ intervalMs: 2000, timeoutMs: 750 });
    await xlb('vip', 'rm', 'tcp', '198.19.1.1', '80', '--api', api);
    // Out of the schema's bounds: named by the flag, in its own units, before the API is asked.
    expect(await xlb(...addArgs('--hc-interval', '99999999999s'), '--api', api)).toMatchObject({
      code: 1,
      stderr: 'xlb: --hc-interval: at most 60m, not 99999999999s\n',
    });
  });

  test('backend set changes only what it names; drain keeps the weight; PUT replaces', async () => {
    await xlb('vip', 'add', 'tcp', '198.19.1.2', '80', '--forwarding', 'ipip', '--api', api);
    await xlb('backend', 'add', 'tcp', '198.19.1.2', '80', '198.18.1.11', '--weight', '3', '--api', api);
    const backend = (view: Record<string, unknown>) => (view as unknown as VipView).backends[0];
    const set = (...options: string[]) => json('backend', 'set', 'tcp', '198.19.1.2', '80', '198.18.1.11', ...options);
    expect(backend(await set('--state', 'drain'))).toMatchObject({ weight: 3, state: 'drain' });
    expect(backend(await set('--weight', '5'))).toMatchObject({ weight: 5, state: 'drain' });
    expect(backend(await set('--state', 'active'))).toMatchObject({ weight: 5, state: 'active' });
    expect(backend(await json('backend', 'drain', 'tcp', '198.19.1.2', '80', '198.18.1.11'))).toMatchObject({ weight: 5, state: 'drain' });
    expect(backend(await set('--weight', '2', '--state', 'active'))).toMatchObject({ weight: 2, state: 'active' });
    expect(backend(await json('backend', 'add', 'tcp', '198.19.1.2', '80', '198.18.1.11', '--state', 'drain'))).toMatchObject({
      weight: 1,
      state: 'drain',
    });
    const missing = await xlb('backend', 'set', 'tcp', '198.19.1.2', '80', '198.18.1.99', '--weight', '2', '--api', api);
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toMatch(/^xlb: 404: backend 198\.18\.1\.99 of VIP tcp\/198\.19\.1\.2:80 does not exist/);
    await xlb('vip', 'rm', 'tcp', '198.19.1.2', '80', '--api', api);
  });

  test('PATCH of a backend: 200 with only the given field changed, 400 for a bad body, 404 for no such backend', async () => {
    const path = (backend: string) => vipPath('udp', '198.19.1.3', 53, backend);
    await client.request('PUT', vipPath('udp', '198.19.1.3', 53), { forwarding: 'ipip' });
    await client.request('PUT', path('198.18.1.11'), { weight: 4 });
    const before = d.stateText();
    for (const [body, message] of [
      [{}, /give at least one of weight and state/],
      [{ weight: -1 }, /body\.weight: Too small/],
      [{ weight: 2, color: 'red' }, /color/],
      [{ state: 'down' }, /body\.state/],
    ] as const) {
      const res = await client.request<{ error: { code: string; message: string } }>('PATCH', path('198.18.1.11'), body);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    expect(d.stateText()).toBe(before);
    const missing = await client.request<{ error: { code: string } }>('PATCH', path('198.18.1.12'), { weight: 2 });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect((await client.request('PATCH', vipPath('udp', '198.19.1.4', 53, '198.18.1.11'), { weight: 2 })).status).toBe(404);
    const ok = await client.request<VipView>('PATCH', path('198.18.1.11'), { state: 'drain' });
    expect(ok.status).toBe(200);
    expect(ok.body.backends[0]).toMatchObject({ address: '198.18.1.11', weight: 4, state: 'drain' });
    expect(JSON.parse(d.stateText()).vips[0].backends[0]).toMatchObject({ weight: 4, state: 'drain' });
    await client.request('DELETE', vipPath('udp', '198.19.1.3', 53));
  });

  test('backend ls shows the health reason, the last check and that the VIP is in panic mode', async () => {
    await client.request('PUT', vipPath('tcp', '198.19.1.5', 80), {
      forwarding: 'ipip',
      healthCheck: { type: refusing.name, intervalMs: 100 },
    });
    await client.request('PUT', vipPath('tcp', '198.19.1.5', 80, '198.18.1.21'), {});
    await until('the backend to be down', async () => {
      const view = await client.request<VipView>('GET', vipPath('tcp', '198.19.1.5', 80));
      return view.body.panic && view.body.backends[0]?.health === 'down' ? true : undefined;
    });
    const { stdout } = await xlb('backend', 'ls', 'tcp', '198.19.1.5', '80', '--api', api);
    const [panicLine, header, row] = stdout.split('\n');
    expect(panicLine).toMatch(/^tcp\/198\.19\.1\.5:80 is in panic mode: under 50% of its backends are healthy/);
    expect(header).toMatch(/^BACKEND\s+WEIGHT\s+STATE\s+HEALTH\s+LAST CHECK\s+VIA\s+IN RING/);
    expect(row).toMatch(
      /^198\.18\.1\.21\s+1\s+active\s+down \(refused by the test through ipip to 198\.18\.1\.21\)\s+\d+[ms]+ ago, \d+(\.\d)?ms\s+vip\s+yes/,
    );
    await xlb('vip', 'rm', 'tcp', '198.19.1.5', '80', '--api', api);
  });

  test('IPv6 endpoints print as [address]:port', async () => {
    const added = await xlb('vip', 'add', 'udp', '2001:db8::10', '53', '--forwarding', 'ipip', '--api', api);
    expect(added.stdout).toMatch(/^udp\/\[2001:db8::10\]:53\s+ipip/m);
    expect((await xlb('vip', 'ls', '--api', api)).stdout).toMatch(/^udp\/\[2001:db8::10\]:53\s/m);
    await xlb('backend', 'add', 'udp', '2001:db8::10', '53', '2001:db8::11', '--api', api);
    expect((await xlb('stats', '--api', api)).stdout).toMatch(/^udp\/\[2001:db8::10\]:53\s+\d+/m);
    expect((await xlb('backend', 'rm', 'udp', '2001:db8::10', '53', '2001:db8::11', '--api', api)).stdout).toBe(
      'removed 2001:db8::11 from udp/[2001:db8::10]:53\n',
    );
    const missing = await xlb('backend', 'ls', 'udp', '2001:db8::9', '53', '--api', api);
    expect(missing.stderr).toMatch(/^xlb: 404: VIP udp\/\[2001:db8::9\]:53 does not exist/);
    expect((await xlb('vip', 'rm', 'udp', '2001:db8::10', '53', '--api', api)).stdout).toBe('removed udp/[2001:db8::10]:53\n');
  });

  test('stats --watch into a pipe: no screen-clearing codes, and a reader that goes away ends it with 141 quietly', async () => {
    const { first, code, stderr } = await xlbCutShort(['stats', '--watch', '--api', api]);
    expect(first).toMatch(/^VIP/);
    expect({ code, stderr }).toEqual({ code: 141, stderr: '' });
  });

  test('stats shows packets by outcome', async () => {
    // A TCP packet to an address no VIP has: counted as not configured.
    for (const sport of [40000, 40001]) d.dp.program.testRun({ data: tcp4({ sport, flags: 'S' }) });
    const outcomes = (await json('stats')).outcomes as Record<string, { packets: number }>;
    const counted = Object.entries(outcomes).filter(([, o]) => o.packets > 0);
    expect(counted.length).toBeGreaterThan(0);
    const { stdout } = await xlb('stats', '--api', api);
    expect(stdout).toMatch(/^OUTCOME\s+PACKETS\s+BYTES$/m);
    for (const [name, o] of counted) expect(stdout).toMatch(new RegExp(`^${name}\\s+${o.packets}\\s`, 'm'));
  });

  test('every --json prints an object keyed as the API answers', async () => {
    await xlb('vip', 'add', 'tcp', '198.19.1.6', '80', '--forwarding', 'ipip', '--api', api);
    await xlb('backend', 'add', 'tcp', '198.19.1.6', '80', '198.18.1.31', '--api', api);
    expect(Object.keys(await json('vip', 'ls'))).toEqual(['vips']);
    expect(Object.keys(await json('backend', 'ls', 'tcp', '198.19.1.6', '80'))).toEqual(['backends']);
    expect(await json('vip', 'add', 'tcp', '198.19.1.6', '80', '--forwarding', 'ipip')).toMatchObject({ address: '198.19.1.6' });
    expect(await json('status')).toHaveProperty('counts');
    expect(await json('stats')).toHaveProperty('outcomes');
    expect(await json('backend', 'rm', 'tcp', '198.19.1.6', '80', '198.18.1.31')).toEqual({ removed: true });
    expect(await json('vip', 'rm', 'tcp', '198.19.1.6', '80')).toEqual({ removed: true });
  });

  test('a token file that cannot be used is named with what is wrong, not as an unreachable API', async () => {
    const token = join(dir, 'token');
    const status = () => xlb('status', '--token-file', token, '--api', api);
    expect((await status()).stderr).toBe(`xlb: token file ${token} does not exist\n`);
    writeFileSync(token, '\n');
    expect((await status()).stderr).toBe(`xlb: token file ${token} is empty\n`);
    writeFileSync(token, 'a'.repeat(32));
    chmodSync(token, 0o600);
    chmodSync(dir, 0o755);
    const asNobody = await xlbThrough(
      ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      'status',
      '--token-file',
      token,
      '--api',
      api,
    );
    expect(asNobody).toMatchObject({ code: 1, stderr: `xlb: token file ${token} is not readable by this user (permission denied)\n` });
  });
});

describe('xlb ready', () => {
  test('--timeout takes a duration and names it when it runs out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-ready-'));
    try {
      const config = join(dir, 'xlb.yaml');
      writeFileSync(config, `iface: lo\napi: unix:${join(dir, 'nothing.sock')}\n`);
      const started = Date.now();
      expect(await xlb('ready', '--config', config, '--timeout', '300ms')).toMatchObject({
        code: 1,
        stderr: 'xlb: not ready after 300ms (last status unreachable)\n',
      });
      expect(Date.now() - started).toBeLessThan(30_000);
      expect((await xlb('ready', '--config', config, '--timeout', '3x')).stderr).toMatch(/^xlb: --timeout: not a duration like 500ms/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('xlb preflight', () => {
  test('--iface without a config file checks that interface', async () => {
    const res = await xlb('preflight', '--iface', 'lo', '--xdp-mode', 'generic', '--json');
    const checks = Object.fromEntries((JSON.parse(res.stdout) as { checks: { name: string }[] }).checks.map((c) => [c.name, c]));
    expect(checks.config).toMatchObject({ ok: true, detail: 'no config file: the flags and the defaults' });
    expect(checks.interface).toMatchObject({ ok: true, detail: 'lo' });
    expect(checks.xdp).toMatchObject({ ok: true, detail: expect.stringMatching(/generic mode/) });
    const missing = await xlb('preflight', '--iface', 'nope0');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^interface\s+NO\s+no interface nope0$/m);
    expect(await xlb('preflight')).toMatchObject({ code: 1, stderr: 'xlb: give --config, --iface or both\n' });
  });

  test('a bad --iface is refused once, saying what is wrong with it', async () => {
    for (const [iface, why] of [
      ['a/b', "an interface name: no '/' or white space"],
      ['', 'an interface name, not empty'],
      ['abcdefghijklmnop', 'an interface name of at most 15 characters'],
    ]) {
      const res = await xlb('preflight', '--iface', iface!);
      expect(res.code).toBe(1);
      expect(res.stdout.match(/--iface: .*/g)).toEqual([`--iface: ${why}`]);
    }
  });
});
