/** The xlb command against a live API on a unix socket, its errors, and `xlb down`. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ifNameToIndex, tcQuery } from '@xlb/native';
import { DEFAULT_MAX_VIPS, DEFAULT_RING_SIZE } from '../control/dataplane/codec.js';
import { Dataplane } from '../control/dataplane/dataplane.js';
import { Decapsulator } from '../control/dataplane/decapsulator.js';
import { BALANCER_PINS } from '../control/dataplane/pins.js';
import { inNamespace, Namespaces, nsRun } from '../scripts/lab/netns.js';
import { CLI, run, startSocketDaemon, xlb } from './lib/cli.js';
import type { TestDaemon } from './lib/daemon.js';

/** `xlb VERB` inside namespace `ns`, on its veth0 in generic mode, pins under `pins`. */
const onVeth0 = (ns: string, verb: string, pins: string, ...args: string[]) =>
  run('nsenter', [
    `--net=/run/netns/${ns}`,
    process.execPath,
    CLI,
    verb,
    '--iface',
    'veth0',
    '--xdp-mode',
    'generic',
    '--bpffs',
    pins,
    ...args,
  ]);

describe('client verbs', () => {
  let d: TestDaemon;
  let dir: string;
  let api: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ d, dir, api, close } = await startSocketDaemon());
  });
  afterAll(() => close());

  test('vip add / ls / rm, backend add / drain / ls / rm, in tables and JSON', async () => {
    const added = await xlb('vip', 'add', 'tcp', '198.19.0.1', '80', '--forwarding', 'ipip', '--health-check', 'none', '--api', api);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^VIP\s+FORWARDING/m);
    expect(added.stdout).toMatch(/tcp\/198\.19\.0\.1:80\s+ipip\s+flow\s+none\s+0\s+0\s+no/);

    await xlb('backend', 'add', 'tcp', '198.19.0.1', '80', '198.18.0.11', '--weight', '3', '--api', api);
    await xlb('backend', 'add', 'tcp', '198.19.0.1', '80', '198.18.0.12', '--api', api);
    const drained = await xlb('backend', 'drain', 'tcp', '198.19.0.1', '80', '198.18.0.11', '--json', '--api', api);
    expect(JSON.parse(drained.stdout).backends[0]).toMatchObject({ address: '198.18.0.11', weight: 3, state: 'drain', inRing: false });

    const listed = JSON.parse((await xlb('backend', 'ls', 'tcp', '198.19.0.1', '80', '--json', '--api', api)).stdout).backends;
    expect(listed.map((b: { address: string; state: string }) => [b.address, b.state])).toEqual([
      ['198.18.0.11', 'drain'],
      ['198.18.0.12', 'active'],
    ]);
    const vips = JSON.parse((await xlb('vip', 'ls', '--json', '--api', api)).stdout).vips;
    expect(vips).toHaveLength(1);

    expect((await xlb('backend', 'rm', 'tcp', '198.19.0.1', '80', '198.18.0.12', '--api', api)).code).toBe(0);
    expect((await xlb('vip', 'rm', 'tcp', '198.19.0.1', '80', '--api', api)).stdout).toMatch(/removed tcp\/198\.19\.0\.1:80/);
    expect(JSON.parse((await xlb('vip', 'ls', '--json', '--api', api)).stdout).vips).toEqual([]);
  });

  test('vip add with a udp check: a DNS query as hex, the answer expected; a text payload and reply', async () => {
    const query = '1d0c01000001000000000000066865616c746803786c6204746573740000010001';
    const added = await xlb(
      ...['vip', 'add', 'udp', '198.19.0.2', '53', '--forwarding', 'dsr', '--health-check', 'udp', '--hc-send-hex', query],
      ...['--hc-expect-hex', '8180', '--hc-timeout', '500ms', '--json', '--api', api],
    );
    expect(added.stderr).toBe('');
    expect(JSON.parse(added.stdout).healthCheck).toEqual({ type: 'udp', via: 'vip', sendHex: query, expectHex: '8180', timeoutMs: 500 });
    expect((await xlb('vip', 'rm', 'udp', '198.19.0.2', '53', '--api', api)).code).toBe(0);

    const text = await xlb(
      ...['vip', 'add', 'tcp', '198.19.0.2', '7', '--forwarding', 'dsr', '--health-check', 'udp', '--hc-send', 'ping'],
      ...['--hc-expect', 'pong', '--json', '--api', api],
    );
    expect(JSON.parse(text.stdout).healthCheck).toEqual({ type: 'udp', via: 'vip', send: 'ping', expect: 'pong' });
    expect((await xlb('vip', 'rm', 'tcp', '198.19.0.2', '7', '--api', api)).code).toBe(0);
  });

  test('status and stats', async () => {
    const status = JSON.parse((await xlb('status', '--json', '--api', api)).stdout);
    expect(status).toMatchObject({ version: 'test', interface: 'lo' });
    const stats = await xlb('stats', '--api', api);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/^VIP \/ BACKEND\s+SHARE\s+PACKETS/m);
  });

  test("API errors exit 1 with the server's reason", async () => {
    const bad = await xlb('vip', 'add', 'tcp', '198.19.0.300', '80', '--forwarding', 'dsr', '--api', api);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^xlb: 400: params is invalid: params\.address: not an IPv4 or IPv6 address/);
    const missing = await xlb('backend', 'drain', 'tcp', '198.19.0.9', '80', '198.18.0.11', '--api', api);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/404: VIP tcp\/198\.19\.0\.9:80 does not exist/);
  });

  test.each([
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'tcp', '--hc-port', '0x50'],
      /^xlb: --hc-port: not a whole number in decimal digits: "0x50"/,
    ],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'tcp', '--hc-interval', '1e3'],
      /^xlb: --hc-interval: not a duration like 500ms, 2s, 1m or a whole number of milliseconds: "1e3"/,
    ],
    ...['1.5s', '2 s', '-1s', '1h', 's', '02s', ''].map(
      (text) =>
        [
          ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'http', '--hc-timeout', text],
          new RegExp(`^xlb: --hc-timeout: not a duration like 500ms, 2s, 1m or a whole number of milliseconds: ${JSON.stringify(text)}`),
        ] as [string[], RegExp],
    ),
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'none', '--hc-interval', '2s'],
      /^xlb: --hc-interval: not an option of a none check/,
    ],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--hc-path', '/healthz', '--hc-port', '8080'],
      /^xlb: --hc-port needs --health-check/,
    ],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'http', '--hc-interval', '50ms'],
      /^xlb: --hc-interval: at least 100ms, not 50ms$/m,
    ],
    [['backend', 'set', 'tcp', '198.19.0.5', '80', '198.18.0.11'], /^xlb: give --weight, --state or both/],
    [['backend', 'set', 'tcp', '198.19.0.5', '80', '198.18.0.11', '--weight', '0x3'], /^xlb: --weight: not a whole number/],
    [
      ['backend', 'set', 'tcp', '198.19.0.5', '80', '198.18.0.11', '--state', 'down'],
      /'down' is invalid\. Allowed choices are active, drain/,
    ],
    [['backend', 'set', 'tcp', '198.19.0.5', '80', '198.18.0.11', '--weight', '2'], /^xlb: 404: VIP tcp\/198\.19\.0\.5:80 does not exist/],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'http', '--hc-expect-status', '+200'],
      /^xlb: --hc-expect-status: not a whole number/,
    ],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'tcp', '--hc-path', '/x'],
      /^xlb: --hc-path: not an option of a tcp check/,
    ],
    [['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--hc-rise', '3'], /^xlb: --hc-rise needs --health-check/],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'icmp'],
      /^xlb: --health-check: one of tcp, http, udp or none, not "icmp"/,
    ],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--panic-threshold', '0x1'],
      /^xlb: --panic-threshold: not a decimal number like 0\.5: "0x1"/,
    ],
    [['vip', 'add', 'tcp', '198.19.0.5', '080', '--forwarding', 'dsr'], /^xlb: port: not a port \(0\.\.65535 in decimal digits\): "080"/],
    [['vip', 'add', 'tcp', '198.19.0.5', '0x50', '--forwarding', 'dsr'], /^xlb: port: not a port/],
    [['vip', 'rm', 'tcp', '198.19.0.5', '80.0'], /^xlb: port: not a port/],
    [
      ['backend', 'add', 'tcp', '198.19.0.5', '80', '198.18.0.11', '--weight', '1e1'],
      /^xlb: --weight: not a whole number in decimal digits: "1e1"/,
    ],
    [['backend', 'add', 'tcp', '198.19.0.5', '+80', '198.18.0.11'], /^xlb: port: not a port/],
    [['backend', 'ls', 'tcp', '198.19.0.5', ' 80'], /^xlb: port: not a port/],
    [
      ['vip', 'add', 'tcp', '224.0.0.1', '80', '--forwarding', 'dsr'],
      /^xlb: 400: params is invalid: params\.address: 224\.0\.0\.1 is a multicast address/,
    ],
    [['vip', 'add', 'tcp', '::ffff:198.19.0.9', '80', '--forwarding', 'dsr'], /^xlb: 400: .*use the IPv4 form 198\.19\.0\.9/],
    [
      ['vip', 'add', 'tcp', '198.19.0.5', '80', '--forwarding', 'dsr', '--health-check', 'http', '--hc-path', '/a b'],
      /^xlb: 400: .*body\.healthCheck\.path: character U\+0020 at position 2/,
    ],
    ...[
      [['--hc-path', '/x'], /^xlb: --hc-path: not an option of a udp check/],
      [['--hc-expect-status', '200'], /^xlb: --hc-expect-status: not an option of a udp check/],
      [[], /^xlb: 400: .*body\.healthCheck\.send: a udp check needs a payload/],
      [['--hc-send-hex', '0x01'], /^xlb: 400: .*body\.healthCheck\.sendHex: "x" at position 1 is not a hex digit/],
      [['--hc-send', 'a', '--hc-expect', 'b', '--hc-expect-hex', '62'], /^xlb: 400: .*body\.healthCheck\.expectHex: .*not both/],
    ].map(
      ([flags, message]) =>
        [['vip', 'add', 'udp', '198.19.0.5', '53', '--forwarding', 'dsr', '--health-check', 'udp', ...(flags as string[])], message] as [
          string[],
          RegExp,
        ],
    ),
    [
      ['vip', 'add', 'udp', '198.19.0.5', '53', '--forwarding', 'dsr', '--health-check', 'tcp', '--hc-send', 'ping'],
      /^xlb: --hc-send: not an option of a tcp check/,
    ],
    [
      ['backend', 'add', 'tcp', '198.19.0.5', '80', '255.255.255.255'],
      /^xlb: 400: .*params\.backend: 255\.255\.255\.255 is the limited broadcast address/,
    ],
  ])('bad input %j exits 1 naming the option or field, and changes nothing', async (args, message) => {
    const before = d.stateText();
    const res = await xlb(...args, '--api', api);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
    expect(d.stateText()).toBe(before);
  });

  test('an unreachable API is named', async () => {
    const res = await xlb('status', '--api', `unix:${join(dir, 'nothing.sock')}`);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach the API at unix:.*nothing\.sock: ENOENT/);
  });
});

describe('serve option errors name the flag and start nothing', () => {
  test("the help shows each option's default from the options schema", async () => {
    const { stdout } = await xlb('serve', '--help');
    const help = stdout.replace(/\s+/g, ' ');
    for (const [flag, value] of [
      ['--xdp-mode', 'native'],
      ['--api', '127.0.0.1:9180'],
      ['--bpffs', '/sys/fs/bpf/xlb'],
      ['--mutations-per-minute', 600],
      ['--ring-size', DEFAULT_RING_SIZE],
      ['--max-vips', DEFAULT_MAX_VIPS],
      ['--bird-dir', '/run/xlb/bird'],
    ] as const) {
      expect(help).toMatch(new RegExp(`${flag} <[^>]+> [^-]*\\(default ${String(value).replace(/\./g, '\\.')}\\)`));
    }
  });

  test.each([
    [['--iface', 'eth0', '--xdp-mode', 'turbo'], /--xdp-mode: Invalid option/],
    [['--iface', 'eth0', '--mtu', '99999'], /--mtu: Too big/],
    ...['0x5dc', '1e3', '+1500', '-1', '01500', '1500.0', ' 1500', ''].map(
      (mtu) =>
        [
          ['--iface', 'eth0', '--mtu', mtu],
          new RegExp(`--mtu: not a whole number in decimal digits: ${JSON.stringify(mtu).replace('+', '\\+')}`),
        ] as [string[], RegExp],
    ),
    [['--iface', 'eth0', '--max-vips', '0x10'], /--max-vips: not a whole number in decimal digits/],
    [['--iface', 'eth0', '--hash-seed', '1e3'], /--hash-seed: not a whole number in decimal digits/],
    [['--iface', 'eth0', '--ring-size', '0x3'], /--ring-size: not a whole number in decimal digits/],
    [['--iface', 'eth0', '--mutations-per-minute', '1.5'], /--mutations-per-minute: not a whole number in decimal digits/],
    [['--iface', 'eth0', '--api', '127.0.0.1:09180'], /--api: port must be 1..65535 in decimal digits/],
    [['--iface', 'eth0', '--source-v4', '198.18.0.1/0x18'], /--source-v4: .*prefix length must be 16..32/],
    [['--iface', 'eth0', '--bgp', '--bgp-peer', '198.18.0.254@0x10'], /--bgp-peer: .*expected ADDRESS@ASN/],
    [['--iface', 'eth0', '--ring-size', '65536'], /--ring-size: must be a prime/],
    [['--iface', 'eth0', '--api', 'nowhere'], /--api: expected HOST:PORT/],
    [['--iface', 'eth0', '--source-v4', '2001:db8::1'], /--source-v4: .*not an IPv4 address/],
    [['--iface', 'eth0', '--source-v4', '198.18.0.0/8'], /--source-v4: .*prefix length must be 16..32/],
    [['--iface', 'eth0', '--source-v4', '198.18.0.1/24/5'], /--source-v4: .*prefix length must be 16..32/],
    [['--iface', 'eth0', '--gateway-mac', 'zz:00'], /--gateway-mac: a MAC like/],
    [['--iface', 'eth0', '--source-v4', '127.0.0.1'], /--source-v4: "127\.0\.0\.1": 127\.0\.0\.1 is a loopback address/],
    [['--iface', 'eth0', '--source-v4', '255.255.255.255'], /--source-v4: .*limited broadcast/],
    [['--iface', 'eth0', '--source-v6', 'ff02::1'], /--source-v6: .*multicast/],
    [['--iface', 'eth0', '--source-v6', '::ffff:198.18.0.1'], /--source-v6: .*use the IPv4 form/],
    [
      ['--iface', 'eth0', '--bgp', '--bgp-peer', '224.0.0.5@65000'],
      /--bgp-peer: "224\.0\.0\.5@65000": 224\.0\.0\.5 is a multicast address/,
    ],
    [[], /--iface: /],
    [['--iface', 'eth0', '--api', '0.0.0.0:9180'], /give --token-file/],
    [['--iface', 'no-such-if0', '--api', 'unix:/tmp/xlb-never.sock'], /if_nametoindex\(no-such-if0\)/],
  ])('serve %j', async (args, message) => {
    const res = await xlb('serve', ...args, '--state', '/tmp/xlb-never-state.json', '--bpffs', '/sys/fs/bpf/xlb-never');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
    expect(existsSync('/sys/fs/bpf/xlb-never')).toBe(false);
    expect(existsSync('/tmp/xlb-never-state.json')).toBe(false);
  });

  test('a state file that does not validate stops the daemon, naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-state-'));
    try {
      const state = join(dir, 'state.json');
      writeFileSync(
        state,
        JSON.stringify({
          version: 1,
          vips: [{ protocol: 'tcp', address: '198.19.0.1', port: 80, id: 0, forwarding: 'nat', backends: [] }],
        }),
      );
      // A start from the state file that must stop before it makes a pin.
      const serve = () =>
        xlb('serve', '--iface', 'lo', '--api', `unix:${join(dir, 'api.sock')}`, '--state', state, '--bpffs', '/sys/fs/bpf/xlb-never');
      const res = await serve();
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/state file .*state\.json: vips\[0\]\.forwarding: Invalid option/);
      expect(existsSync('/sys/fs/bpf/xlb-never')).toBe(false);
      const vip = (id: number, address: string) => ({ protocol: 'tcp', address, port: 80, id, forwarding: 'ipip', backends: [] });
      writeFileSync(state, JSON.stringify({ version: 1, vips: [vip(0, '198.19.0.1'), vip(0, '198.19.0.2')] }));
      const twice = await serve();
      expect(twice.stderr).toMatch(/state file .*state\.json: vips\[1\] \(tcp\/198\.19\.0\.2:80\): id 0 is already held by vips\[0\]/);
      expect(existsSync('/sys/fs/bpf/xlb-never')).toBe(false);
      writeFileSync(state, JSON.stringify({ version: 1, vips: [vip(0, '127.0.0.1')] }));
      const loopback = await xlb(
        'serve',
        '--iface',
        'lo',
        '--api',
        `unix:${join(dir, 'api.sock')}`,
        '--state',
        state,
        '--bpffs',
        '/sys/fs/bpf/xlb-never',
      );
      expect(loopback.stderr).toMatch(/state file .*state\.json: vips\[0\]\.address: 127\.0\.0\.1 is a loopback address/);
      expect(existsSync('/sys/fs/bpf/xlb-never')).toBe(false);
      writeFileSync(state, '{"version": 1, "vips": [');
      expect((await xlb('serve', '--iface', 'lo', '--state', state, '--api', `unix:${join(dir, 'api.sock')}`)).stderr).toMatch(
        /is not JSON/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a YAML config file is read, with flags taking precedence and numbers in decimal digits only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-yaml-'));
    try {
      const file = join(dir, 'xlb.yaml');
      writeFileSync(file, 'iface: eth0\nmtu: 12\n');
      expect((await xlb('serve', '--config', file)).stderr).toMatch(/--mtu: Too small/);
      for (const mtu of ['0x5dc', '1e3', '+1500', '01500', '1500.0', '0o2734']) {
        writeFileSync(file, `iface: eth0\nmtu: ${mtu}\n`);
        expect((await xlb('serve', '--config', file)).stderr).toContain(`--mtu: not a whole number in decimal digits: "${mtu}"`);
      }
      for (const mtu of ['1500', "'1500'"]) {
        writeFileSync(
          file,
          `iface: no-such-if0\nmtu: ${mtu}\napi: unix:/tmp/xlb-never.sock\nstate: /tmp/xlb-never-state.json\nbpffs: /sys/fs/bpf/xlb-never\n`,
        );
        expect((await xlb('serve', '--config', file)).stderr).toMatch(/if_nametoindex\(no-such-if0\)/);
      }
      writeFileSync(
        file,
        'iface: no-such-if0\nxdp-mode: generic\napi: unix:/tmp/xlb-never.sock\nstate: /tmp/xlb-never-state.json\nbpffs: /sys/fs/bpf/xlb-never\n',
      );
      expect((await xlb('serve', '--config', file)).stderr).toMatch(/if_nametoindex\(no-such-if0\)/);
      expect((await xlb('serve', '--config', file, '--xdp-mode', 'bogus')).stderr).toMatch(/--xdp-mode/);
      writeFileSync(file, 'iface: eth0\nsource-v4: 169.254.0.1\nbgp-peer: [ "::1@65000" ]\n');
      const bad = (await xlb('serve', '--config', file)).stderr;
      expect(bad).toMatch(/--source-v4: "169\.254\.0\.1": 169\.254\.0\.1 is a link-local address/);
      expect(bad).toMatch(/--bgp-peer: "::1@65000": ::1 is the loopback address/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('xlb decap', () => {
  const namespaces = new Namespaces('decap');
  afterAll(() => namespaces.cleanup());

  test('attaches xlb_decap with its addresses, replaces them on a second run, removes it', async () => {
    const ns = namespaces.create('be');
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
    const pins = `/sys/fs/bpf/${namespaces.prefix}-decap`;
    const decap = (...args: string[]) => onVeth0(ns, 'decap', pins, ...args);
    try {
      expect((await decap('--address', '198.18.0.11', '2001:db8::11')).stdout).toMatch(
        /xlb_decap on veth0 for 198\.18\.0\.11, 2001:db8::11/,
      );
      expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp.prog.name).toBe('xlb_decap');
      expect((await decap('--address', '198.18.0.12')).stdout).toMatch(/for 198\.18\.0\.12\n/);
      await expect(decap('--address', 'nope')).rejects.toMatchObject({
        stderr: expect.stringMatching(/--address: not an IPv4 or IPv6 address: "nope"/),
      });
      expect((await decap('--remove')).stdout).toMatch(/detached xlb_decap from veth0/);
      expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp).toBeUndefined();
      expect(existsSync(pins)).toBe(false);
    } finally {
      rmSync(pins, { recursive: true, force: true });
    }
  });
});

describe('xlb down', () => {
  const namespaces = new Namespaces('down');
  afterAll(() => namespaces.cleanup());

  test('an XDP mode other than native or generic is refused before anything is done', async () => {
    for (const args of [['down'], ['decap', '--address', '198.18.0.11']]) {
      const res = await xlb(...args, '--iface', 'lo', '--xdp-mode', 'turbo', '--bpffs', '/sys/fs/bpf/xlb-never');
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/'turbo' is invalid\. Allowed choices are native, generic/);
      expect(existsSync('/sys/fs/bpf/xlb-never')).toBe(false);
    }
  });

  test('detaches the balancer and its tc probe program and removes the pins; leaves another program alone', async () => {
    const ns = namespaces.create('lb');
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
    const pins = `/sys/fs/bpf/${namespaces.prefix}`;
    mkdirSync(pins);
    const dp = Dataplane.open({ pinDir: pins, maxFlows: 64 });
    try {
      inNamespace(ns, () => dp.attach('veth0', 'generic'));
      const probeFilter = () => inNamespace(ns, () => tcQuery(ifNameToIndex('veth0')));
      expect(probeFilter()).toBe(dp.probeProgram.info.id);
      const down = (...args: string[]) => onVeth0(ns, 'down', pins, ...args);
      const { stdout } = await down();
      expect(stdout).toBe(
        `detached from veth0 (generic mode); removed ${BALANCER_PINS.length} pins; removed ${pins}; removed the clsact qdisc on veth0\n`,
      );
      expect(probeFilter()).toBe(0);
      expect(existsSync(pins)).toBe(false);
      expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp).toBeUndefined();

      const decap = Decapsulator.open();
      try {
        inNamespace(ns, () => decap.attach('veth0', 'generic'));
        await expect(down()).rejects.toMatchObject({
          stderr: expect.stringMatching(/runs XDP program xlb_decap, not xlb_balancer; leaving it/),
        });
        expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp.prog.name).toBe('xlb_decap');
      } finally {
        decap.close();
      }
    } finally {
      dp.close();
      rmSync(pins, { recursive: true, force: true });
    }
  });
});
