/**
 * The release as an operator installs it: `npm pack` of a copy of these sources (its
 * prepack build writes the copy's dist/, not the one other tests run), then
 * `npm install -g` of the tarball into an empty prefix, which builds the BPF objects
 * and the addon on this host. The installed `xlb`, found through PATH, serves on a
 * veth in a namespace until `xlb ready`.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PACKAGE_ROOT, VERSION } from '../control/paths.js';
import { Namespaces, nsRun } from '../scripts/lab/netns.js';

const run = promisify(execFile);
const INSTALL_TIMEOUT = 300_000;

const namespaces = new Namespaces('install');
let work: string;
let tarball: string;
let prefix: string;
let installed: string;
let serve: ChildProcess | undefined;

/** npm without the npm_* variables of an `npm test` that may have started vitest. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')));
}

/** The env of a shell on a host where the release is installed into `prefix`. */
function hostEnv(): NodeJS.ProcessEnv {
  return { ...npmEnv(), PATH: `${prefix}/bin:${process.env.PATH ?? '/usr/bin:/bin'}` };
}

/** Copies the checkout's files (tracked and new, nothing ignored) and borrows its node_modules. */
function copySources(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '-co', '--exclude-standard', '--deduplicate'], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((file) => file !== '' && existsSync(join(PACKAGE_ROOT, file)));
  execFileSync('rsync', ['-a', '--from0', '--files-from=-', `${PACKAGE_ROOT}/`, `${to}/`], { input: files.join('\0') });
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(to, 'node_modules'));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'xlb-install-'));
  const sources = join(work, 'sources');
  mkdirSync(sources);
  copySources(sources);
  const packed = await run('npm', ['pack', '--pack-destination', work, '--loglevel=error'], {
    cwd: sources,
    env: npmEnv(),
    timeout: INSTALL_TIMEOUT,
  });
  tarball = join(work, packed.stdout.trim().split('\n').at(-1)!);
  prefix = join(work, 'prefix');
  installed = join(prefix, 'lib', 'node_modules', 'xlb');
  mkdirSync(join(prefix, 'lib'), { recursive: true });
  // --allow-scripts as in the README: npm runs xlb's install script even where it blocks unreviewed ones.
  await run(
    'npm',
    ['install', '-g', '--prefix', prefix, `--allow-scripts=${tarball}`, '--no-audit', '--no-fund', '--loglevel=error', tarball],
    {
      env: npmEnv(),
      timeout: INSTALL_TIMEOUT,
      maxBuffer: 16 << 20,
    },
  );
}, 2 * INSTALL_TIMEOUT);

afterAll(() => {
  if (serve?.exitCode === null) serve.kill('SIGKILL');
  namespaces.cleanup();
  rmSync(`/sys/fs/bpf/${namespaces.prefix}`, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack and npm install -g', () => {
  test('the tarball holds what builds on the host, and no build output', () => {
    const entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(entries).toEqual(
      expect.arrayContaining([
        'package/dist/control/cli/main.js',
        'package/bpf/Makefile',
        'package/bpf/xlb_balancer.bpf.c',
        'package/bpf/include/xlb.h',
        'package/node_modules/@xlb/native/binding.gyp',
        'package/node_modules/@xlb/native/src/addon.cc',
        'package/scripts/build-on-host.sh',
        // The README's links to the operations and security pages work on the host.
        'package/docs/operations.md',
        'package/docs/security.md',
      ]),
    );
    expect(entries.filter((entry) => /\/build\/|\.ts$|\.map$|^package\/test\/|\/test-[^/]*\.js$/.test(entry))).toEqual([]);
  });

  test('the install links xlb into the prefix bin and builds the BPF objects and the addon', async () => {
    expect(lstatSync(join(prefix, 'bin', 'xlb')).isSymbolicLink()).toBe(true);
    for (const built of [
      'bpf/build/xlb_balancer.bpf.o',
      'bpf/build/xlb_decap.bpf.o',
      'node_modules/@xlb/native/build/Release/xlb_native.node',
    ])
      expect(existsSync(join(installed, built)), built).toBe(true);
    expect((await run('xlb', ['--version'], { env: hostEnv() })).stdout).toBe(`${VERSION}\n`);
    expect((await run('xlb', ['preflight', '--help'], { env: hostEnv() })).stdout).toMatch(/^Usage: xlb preflight/);
  });

  test('the installed xlb serves on a veth and is ready', async () => {
    const ns = namespaces.create('lb');
    nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    for (const link of ['veth0', 'veth1']) nsRun(ns, 'ip', ['link', 'set', link, 'up']);
    const pins = `/sys/fs/bpf/${namespaces.prefix}`;
    const config = join(work, 'xlb.yaml');
    writeFileSync(
      config,
      [
        'iface: veth0',
        'xdp-mode: generic',
        `api: unix:${join(work, 'api.sock')}`,
        `state: ${join(work, 'state.json')}`,
        `bpffs: ${pins}`,
        'log-level: warn',
        '',
      ].join('\n'),
    );
    // nsenter, not `ip netns exec`: that remounts /sys and hides the pins.
    serve = spawn('nsenter', [`--net=/run/netns/${ns}`, 'xlb', 'serve', '--config', config], { env: hostEnv(), stdio: 'ignore' });
    await run('xlb', ['ready', '--config', config, '--timeout', '30s'], { env: hostEnv() });
    expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp.prog.name).toBe('xlb_balancer');
    const exited = new Promise((resolve) => serve!.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
    await run('nsenter', [`--net=/run/netns/${ns}`, 'xlb', 'down', '--iface', 'veth0', '--bpffs', pins], { env: hostEnv() });
    expect(JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'veth0']))[0].xdp).toBeUndefined();
  });

  test('a host without clang is told what to install before anything is built', async () => {
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    const bin = join(work, 'bin-without-clang');
    mkdirSync(bin);
    for (const tool of ['dirname', 'make', 'g++', 'python3'])
      symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    const result = await run('/bin/sh', [join(unpacked, 'package', 'scripts', 'build-on-host.sh')], { env: { PATH: bin } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/missing clang\./);
    expect(result.stderr).toMatch(/apt-get install clang .*scripts\/setup\.sh/);
    expect(existsSync(join(unpacked, 'package', 'bpf', 'build'))).toBe(false);
  });
});
