/**
 * One owner per data plane, and tools that cannot hurt it: real `xlb serve` processes
 * on veths in namespaces, a second daemon on any of the first one's resources,
 * `xlb down` under a running daemon, a missing or hidden bpffs, option ranges and
 * what a failed start leaves behind.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '@xlb/native';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ApiClient, vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { LOCK_DIR } from '../control/daemon/lock.js';
import { MAX_RING_SIZE } from '../control/daemon/options.js';
import { MAPS } from '../control/dataplane/codec.js';
import { Dataplane } from '../control/dataplane/dataplane.js';
import { Decapsulator } from '../control/dataplane/decapsulator.js';
import { BALANCER_PINS } from '../control/dataplane/pins.js';
import { packagePath } from '../control/paths.js';
import { DaemonProcess } from '../scripts/lab/lab.js';
import { Namespaces, nsRun, sh } from '../scripts/lab/netns.js';

const CLI = packagePath('dist/control/cli/main.js');
const namespaces = new Namespaces('own');
const work = mkdtempSync(join(tmpdir(), 'xlb-own-'));
const pinRoot = `/sys/fs/bpf/${namespaces.prefix}`;
const daemons: DaemonProcess[] = [];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; its whole process group is killed if it outlives `ms`. */
async function runBounded(command: string, args: string[], ms = 20_000): Promise<Run> {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), ms);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

const xlbIn = (ns: string, ...args: string[]) => runBounded('nsenter', [`--net=/run/netns/${ns}`, process.execPath, CLI, ...args]);
const xlb = (...args: string[]) => runBounded(process.execPath, [CLI, ...args]);

interface Paths {
  socket: string;
  state: string;
  bpffs: string;
}

const paths = (name: string): Paths => ({
  socket: join(work, `${name}.sock`),
  state: join(work, `${name}.json`),
  bpffs: `${pinRoot}-${name}`,
});
const serveArgs = (p: Paths, ...extra: string[]) => [
  'serve',
  '--iface',
  'veth0',
  '--xdp-mode',
  'generic',
  '--api',
  `unix:${p.socket}`,
  '--state',
  p.state,
  '--bpffs',
  p.bpffs,
  '--log-level',
  'warn',
  ...extra,
];

async function startDaemon(ns: string, p: Paths, ...extra: string[]): Promise<DaemonProcess> {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, CLI, ...serveArgs(p, ...extra)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const daemon = new DaemonProcess(child, new ApiClient(`unix:${p.socket}`));
  daemons.push(daemon);
  await daemon.ready();
  return daemon;
}

/** A namespace with veth0 (up) and its peer. */
function namespaceWithVeth(short: string): string {
  const ns = namespaces.create(short);
  nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
  nsRun(ns, 'ip', ['link', 'set', 'veth1', 'up']);
  return ns;
}

const xdpProgram = (ns: string): string | undefined => JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp?.prog?.name;

async function api<T>(daemon: DaemonProcess, method: string, path: string, body?: unknown): Promise<T> {
  const response = await daemon.api.request<T>(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** A VIP with one backend, so the daemon has state and a ring. */
async function addVip(daemon: DaemonProcess): Promise<void> {
  await api(daemon, 'PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip', healthCheck: { type: 'none' } });
  await api(daemon, 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'), { weight: 1, state: 'active' });
}

const vips = (daemon: DaemonProcess) => api<{ vips: VipView[] }>(daemon, 'GET', '/v1/vips');

afterAll(async () => {
  for (const daemon of daemons) daemon.kill();
  const running = daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
  await Promise.all(running.map((d) => once(d.child, 'exit')));
  namespaces.cleanup();
  for (const name of readdirSync('/sys/fs/bpf'))
    if (name.startsWith(`${namespaces.prefix}-`)) rmSync(join('/sys/fs/bpf', name), { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('one owner per data plane', () => {
  let nsA: string;
  let nsB: string;
  let first: DaemonProcess;
  const owner = paths('owner');
  let vipsBefore: { vips: VipView[] };

  beforeAll(async () => {
    nsA = namespaceWithVeth('a');
    nsB = namespaceWithVeth('b');
    first = await startDaemon(nsA, owner);
    await addVip(first);
    vipsBefore = await vips(first);
  });

  /** A refused start exits at once, naming what is taken and by whom, and makes nothing. */
  async function expectRefused(ns: string, p: Paths, taken: string, ...extra: string[]) {
    const run = await xlbIn(ns, ...serveArgs(p, ...extra));
    expect(run.signal).toBeNull();
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`${taken} is in use by xlb serve (PID ${first.child.pid})`);
    if (p.bpffs !== owner.bpffs) expect(existsSync(p.bpffs)).toBe(false);
    if (p.state !== owner.state) expect(existsSync(p.state)).toBe(false);
    if (p.socket !== owner.socket) expect(existsSync(p.socket)).toBe(false);
    // The first daemon is as it was.
    expect(await vips(first)).toEqual(vipsBefore);
    expect((await first.api.request('GET', '/readyz')).status).toBe(200);
    expect(xdpProgram(nsA)).toBe('xlb_balancer');
  }

  test('a second daemon with the same state file and pins is refused', async () => {
    await expectRefused(nsA, { ...owner, socket: paths('same').socket }, owner.bpffs);
  });

  test('a second daemon with another state file on the same pins is refused', async () => {
    await expectRefused(nsA, { ...paths('other-state'), bpffs: owner.bpffs }, owner.bpffs);
  });

  test('a second daemon with other pins and state on the same interface is refused', async () => {
    await expectRefused(nsA, paths('other-pins'), 'interface veth0');
  });

  test('a second daemon on an altname of the interface is refused; down on it needs --force', async () => {
    nsRun(nsA, 'ip', ['link', 'property', 'add', 'dev', 'veth0', 'altname', 'ownalt']);
    try {
      await expectRefused(nsA, paths('altname'), 'interface veth0', '--iface', 'ownalt');
      const down = await xlbIn(nsA, 'down', '--iface', 'ownalt', '--bpffs', paths('altname').bpffs);
      expect(down.code).not.toBe(0);
      expect(down.stderr).toContain(`interface veth0 is in use by xlb serve (PID ${first.child.pid}): stop that daemon first`);
      expect(xdpProgram(nsA)).toBe('xlb_balancer');
      expect((await first.api.request('GET', '/readyz')).status).toBe(200);
    } finally {
      nsRun(nsA, 'ip', ['link', 'property', 'del', 'dev', 'veth0', 'altname', 'ownalt']);
    }
  });

  test('a second daemon on the same API socket is refused', async () => {
    await expectRefused(nsB, { ...paths('same-socket'), socket: owner.socket }, `API socket ${owner.socket}`);
  });

  test('a hard link to the state file is refused', async () => {
    const hard = join(work, 'hard.json');
    linkSync(owner.state, hard);
    try {
      const run = await xlbIn(nsB, ...serveArgs({ ...paths('hard'), state: hard }));
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(`state file ${hard} has 2 hard links: xlb saves by rename, which breaks them; keep only one`);
      expect(existsSync(paths('hard').bpffs)).toBe(false);
      expect(xdpProgram(nsB)).toBeUndefined();
    } finally {
      rmSync(hard);
    }
    expect(await vips(first)).toEqual(vipsBefore);
  });

  test('a second daemon on the same state file elsewhere is refused', async () => {
    await expectRefused(nsB, { ...paths('other-ns'), state: owner.state }, owner.state);
  });

  test("bind mounts of the pin directory and of the state directory are the same owner's: serve and down refuse", async () => {
    const pinsBind = join(work, 'bind-pins');
    const stateBind = join(work, 'bind-state');
    mkdirSync(pinsBind);
    mkdirSync(stateBind);
    sh('mount', ['--bind', owner.bpffs, pinsBind]);
    try {
      sh('mount', ['--bind', work, stateBind]);
      try {
        for (const [p, taken] of [
          [{ ...paths('bind-pins'), bpffs: pinsBind }, pinsBind],
          [{ ...paths('bind-state'), state: join(stateBind, 'owner.json') }, join(stateBind, 'owner.json')],
        ] as const) {
          const run = await xlbIn(nsB, ...serveArgs(p));
          expect(run.code).not.toBe(0);
          expect(run.stderr).toContain(`${taken} is in use by xlb serve (PID ${first.child.pid})`);
        }
        const down = await xlbIn(nsB, 'down', '--iface', 'veth0', '--bpffs', pinsBind);
        expect(down.code).not.toBe(0);
        expect(down.stderr).toContain(`${pinsBind} is in use by xlb serve (PID ${first.child.pid})`);
        expect(readdirSync(owner.bpffs).sort()).toEqual([...BALANCER_PINS].sort());
        expect(await vips(first)).toEqual(vipsBefore);
        expect((await first.api.request('GET', '/readyz')).status).toBe(200);
      } finally {
        sh('umount', [stateBind]);
      }
    } finally {
      sh('umount', [pinsBind]);
      // rmdir, never a recursive rm: a mount still in place would take its contents along.
      rmdirSync(pinsBind);
      rmdirSync(stateBind);
    }
  });

  test('an interface of the same name in another namespace is another interface', async () => {
    const second = await startDaemon(nsB, paths('second'));
    expect(xdpProgram(nsB)).toBe('xlb_balancer');
    await second.stop('SIGTERM');
    expect(await vips(first)).toEqual(vipsBefore);
  });

  test('after SIGKILL of the owner, the next daemon starts at once (its lock files stay, and never block)', async () => {
    const pid = first.child.pid;
    await first.stop('SIGKILL');
    const stale = readdirSync(LOCK_DIR).filter((name) => readFileSync(join(LOCK_DIR, name), 'utf8').startsWith(`${pid} xlb serve\n`));
    expect(stale.length).toBeGreaterThan(0);
    first = await startDaemon(nsA, owner);
    expect(await vips(first)).toEqual(vipsBefore);
    await expectRefused(nsA, { ...owner, socket: paths('after-kill').socket }, owner.bpffs);
  });
});

describe('the API socket', () => {
  let ns: string;

  beforeAll(() => {
    ns = namespaceWithVeth('sock');
  });

  test.each([
    ['a symlink', (at: string) => symlinkSync(join(work, 'elsewhere'), at)],
    ['a regular file', (at: string) => writeFileSync(at, 'data')],
    ['a directory', (at: string) => mkdirSync(at)],
  ])('%s at the socket path is refused and left as it is', async (kind, make) => {
    const p = paths(`not-socket-${kind.replace(/ /g, '-')}`);
    make(p.socket);
    const run = await xlbIn(ns, ...serveArgs(p));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`--api unix:${p.socket}: ${p.socket} is ${kind}; xlb replaces only a stale socket there`);
    expect(lstatSync(p.socket).isSocket()).toBe(false);
    if (kind === 'a symlink') expect(readlinkSync(p.socket)).toBe(join(work, 'elsewhere'));
    expect(existsSync(p.bpffs)).toBe(false);
    expect(xdpProgram(ns)).toBeUndefined();
  });

  test('a daemon removes its socket when it stops, and only its own', async () => {
    const p = paths('own-socket');
    const daemon = await startDaemon(ns, p);
    expect(lstatSync(p.socket).mode & 0o777).toBe(0o600);
    await daemon.stop('SIGTERM');
    expect(existsSync(p.socket)).toBe(false);

    const replaced = await startDaemon(ns, p);
    rmSync(p.socket);
    writeFileSync(p.socket, "not the daemon's");
    await replaced.stop('SIGTERM');
    expect(readFileSync(p.socket, 'utf8')).toBe("not the daemon's");
  });
});

describe('xlb down', () => {
  let ns: string;
  const p = paths('down');

  beforeAll(() => {
    ns = namespaceWithVeth('down');
  });

  test("refuses while a daemon owns the data plane; --force removes only xlb's pins", async () => {
    const daemon = await startDaemon(ns, p);
    await addVip(daemon);
    // Someone else's things in the same directory: decap pins and a directory of their own.
    Decapsulator.open({ pinDir: p.bpffs }).close();
    mkdirSync(join(p.bpffs, 'foreign'));
    const pinsBefore = readdirSync(p.bpffs).sort();
    // Without --xdp-mode: down finds the balancer in generic mode itself.
    const down = (...args: string[]) => xlbIn(ns, 'down', '--iface', 'veth0', '--bpffs', p.bpffs, ...args);

    const refused = await down();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${p.bpffs} is in use by xlb serve (PID ${daemon.child.pid}): stop that daemon first`);
    expect(xdpProgram(ns)).toBe('xlb_balancer');
    expect(readdirSync(p.bpffs).sort()).toEqual(pinsBefore);
    expect((await daemon.api.request('GET', '/readyz')).status).toBe(200);

    const forced = await down('--force');
    expect(forced.stderr).toBe('');
    expect(forced.stdout).toMatch(
      new RegExp(
        `^detached from veth0 \\(generic mode\\); removed ${BALANCER_PINS.length} pins; .* keeps what xlb did not make; removed the clsact qdisc on veth0\n$`,
      ),
    );
    expect(xdpProgram(ns)).toBeUndefined();
    expect(readdirSync(p.bpffs).sort()).toEqual([MAPS.decapAddresses, MAPS.decapCounters, 'foreign'].sort());
    await daemon.stop('SIGTERM');

    // With no daemon, down needs no --force; the directory goes once it is empty.
    rmSync(join(p.bpffs, 'foreign'), { recursive: true });
    expect((await xlbIn(ns, 'decap', '--remove', '--iface', 'veth0', '--xdp-mode', 'generic', '--bpffs', p.bpffs)).code).toBe(0);
    expect(existsSync(p.bpffs)).toBe(false);
    const again = await down();
    expect(again).toMatchObject({ code: 0, stdout: 'nothing attached on veth0; removed 0 pins\n' });
  });

  test('the balancer pins are exactly the names down removes', () => {
    const dir = `${pinRoot}-names`;
    mkdirSync(dir);
    try {
      Dataplane.open({ pinDir: dir, ringSize: 13, maxVips: 8, maxBackends: 16, maxFlows: 64 }).close();
      expect(readdirSync(dir).sort()).toEqual([...BALANCER_PINS].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bpffs missing or hidden', () => {
  test('serve, down and decap outside bpffs fail at once, naming bpffs and the fix; nothing is made', async () => {
    const dir = join(work, 'not-bpffs', 'x');
    const fix = `--bpffs ${dir}: ${work} is not on bpffs: pins need a directory under /sys/fs/bpf`;
    const serve = await xlb(
      'serve',
      '--iface',
      'lo',
      '--xdp-mode',
      'generic',
      '--api',
      `unix:${join(work, 'nb.sock')}`,
      '--state',
      join(work, 'nb.json'),
      '--bpffs',
      dir,
    );
    expect(serve.code).not.toBe(0);
    expect(serve.stderr).toContain(fix);
    expect((await xlb('down', '--iface', 'lo', '--bpffs', dir)).stderr).toContain(fix);
    expect((await xlb('decap', '--iface', 'lo', '--address', '198.18.0.11', '--bpffs', dir)).stderr).toContain(fix);
    expect((await xlb('decap', '--remove', '--iface', 'lo', '--bpffs', dir)).stderr).toContain(fix);
    expect(existsSync(join(work, 'not-bpffs'))).toBe(false);
    expect(existsSync(join(work, 'nb.json'))).toBe(false);
  });

  test('under ip netns exec (bpffs hidden by the /sys remount) serve fails at once with the nsenter hint', async () => {
    const ns = namespaces.create('hidden');
    const p = paths('hidden');
    const run = await runBounded('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      CLI,
      'serve',
      '--iface',
      'lo',
      '--xdp-mode',
      'generic',
      '--api',
      `unix:${p.socket}`,
      '--state',
      p.state,
      '--bpffs',
      p.bpffs,
    ]);
    expect(run.signal).toBeNull();
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('bpffs is not mounted at /sys/fs/bpf: mount -t bpf bpf /sys/fs/bpf');
    expect(run.stderr).toContain(`ip netns exec remounts /sys and hides bpffs: use nsenter --net=/run/netns/${ns}`);
    expect(existsSync(p.bpffs)).toBe(false);
    expect(existsSync(p.state)).toBe(false);
  });
});

describe('options are checked before anything is made; a failed start takes back what it made', () => {
  let ns: string;

  beforeAll(() => {
    ns = namespaceWithVeth('opts');
  });

  // 655379: the first prime past the largest ring.
  test.each([['4294967311'], ['655374'], ['655379'], ['1']])('--ring-size %s is refused naming the flag', async (size) => {
    const p = paths(`ring-${size}`);
    const run = await xlbIn(ns, ...serveArgs(p, '--ring-size', size));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`--ring-size: must be a prime from 2 to ${MAX_RING_SIZE}`);
    expect(existsSync(p.bpffs)).toBe(false);
  });

  test(`--ring-size ${MAX_RING_SIZE}: the largest ring is built and loaded`, async () => {
    const p = paths('ring-max');
    const daemon = await startDaemon(ns, p, '--ring-size', String(MAX_RING_SIZE));
    try {
      await addVip(daemon);
      const [vip] = (await vips(daemon)).vips;
      expect(vip).toMatchObject({ ringBackends: 1, backends: [{ address: '198.18.0.11', inRing: true }] });
      const rings = BpfMap.fromPin(join(p.bpffs, MAPS.rings));
      try {
        const inner = [...Array(rings.info.maxEntries).keys()]
          .map((id) => rings.lookup(Buffer.from(new Uint32Array([id]).buffer)))
          .find(Boolean)!;
        const ring = BpfMap.fromId(inner.readUInt32LE(0));
        expect(ring.info.maxEntries).toBe(Math.ceil(MAX_RING_SIZE / 2));
        ring.close();
      } finally {
        rings.close();
      }
    } finally {
      await daemon.stop('SIGTERM');
      await xlbIn(ns, 'down', '--iface', 'veth0', '--xdp-mode', 'generic', '--bpffs', p.bpffs);
    }
  });

  test('a start that fails after opening the data plane leaves no new pins, program or directory', async () => {
    const p = { ...paths('fail-fresh'), socket: join(work, 'no-such-dir', 'api.sock') };
    const run = await xlbIn(ns, ...serveArgs(p));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/^xlb: listen E[A-Z]+/);
    expect(existsSync(p.bpffs)).toBe(false);
    expect(xdpProgram(ns)).toBeUndefined();
  });

  test('a start that fails after opening a running data plane leaves its pins as they were', async () => {
    const p = paths('fail-running');
    const daemon = await startDaemon(ns, p);
    await addVip(daemon);
    await daemon.stop('SIGTERM'); // the program and pins stay: a running data plane without a daemon
    const pinIds = () =>
      readdirSync(p.bpffs)
        .sort()
        .map((name) => {
          const map = BpfMap.fromPin(join(p.bpffs, name));
          const id = map.info.id;
          map.close();
          return [name, id];
        });
    const before = pinIds();

    const run = await xlbIn(ns, ...serveArgs({ ...p, socket: join(work, 'no-such-dir', 'api.sock') }));
    expect(run.code).not.toBe(0);
    expect(pinIds()).toEqual(before);
    expect(xdpProgram(ns)).toBe('xlb_balancer');
    await xlbIn(ns, 'down', '--iface', 'veth0', '--xdp-mode', 'generic', '--bpffs', p.bpffs);
  });
});
