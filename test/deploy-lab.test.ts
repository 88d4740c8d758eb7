/**
 * `xlb deploy` against a real sshd in a namespace. The target namespace shares this
 * machine's filesystem, so the deploy really writes /opt/xlb, /etc/xlb, the unit and
 * /usr/local/bin/xlb (the test refuses to run where they already exist, and removes
 * them after).
 * systemd cannot run in this sandbox: the target's PATH holds a small systemctl
 * stand-in that starts and stops the unit's ExecStart.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ApiClient } from '../control/cli/client.js';
import { fingerprint } from '../control/deploy/ssh.js';
import { packagePath, VERSION } from '../control/paths.js';
import { Namespaces, nsRun } from '../scripts/lab/netns.js';

const run = promisify(execFile);
const CLI = packagePath('dist/control/cli/main.js');
const TARGET = '198.18.0.50';
const LINK = '/usr/local/bin/xlb';
const INSTALLED = ['/opt/xlb', '/etc/xlb', '/etc/systemd/system/xlb.service', LINK];

const namespaces = new Namespaces('deploy');
let work: string;
let sshd: ChildProcess | undefined;
let ns: { deployer: string; target: string };
let hostKey: Buffer;

beforeAll(async () => {
  for (const path of INSTALLED) if (existsSync(path)) throw new Error(`refusing to run: ${path} exists on this machine`);
  work = mkdtempSync(join(tmpdir(), 'xlb-deploy-'));
  ns = { deployer: namespaces.create('deployer'), target: namespaces.create('target') };
  execFileSync('ip', ['link', 'add', 'eth0', 'netns', ns.target, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.deployer]);
  nsRun(ns.target, 'ip', ['addr', 'add', `${TARGET}/24`, 'dev', 'eth0']);
  nsRun(ns.deployer, 'ip', ['addr', 'add', '198.18.0.51/24', 'dev', 'eth0']);
  for (const n of [ns.target, ns.deployer]) nsRun(n, 'ip', ['link', 'set', 'eth0', 'up']);

  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'id_ed25519')]);
  writeFileSync(join(work, 'authorized_keys'), readFileSync(join(work, 'id_ed25519.pub')));
  hostKey = Buffer.from(readFileSync(join(work, 'host_key.pub'), 'utf8').split(' ')[1]!, 'base64');
  writeFileSync(join(work, 'known_hosts'), `${TARGET} ssh-ed25519 ${hostKey.toString('base64')}\n`);
  writeFileSync(join(work, 'unknown_hosts'), '');

  // systemctl stand-in: daemon-reload/enable do nothing; restart/stop run the unit's ExecStart.
  execFileSync('mkdir', ['-p', join(work, 'bin')]);
  writeFileSync(
    join(work, 'bin', 'systemctl'),
    `#!/bin/bash
pidfile=${work}/xlb.pid
stop() { if [ -f $pidfile ]; then kill "$(cat $pidfile)" 2>/dev/null; while kill -0 "$(cat $pidfile)" 2>/dev/null; do sleep 0.05; done; rm -f $pidfile; fi; }
case "$1" in
  daemon-reload|enable) ;;
  stop) stop ;;
  restart) stop; cmd=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/$2.service); setsid $cmd >${work}/xlb.log 2>&1 </dev/null & echo $! > $pidfile ;;
  *) echo "stand-in systemctl: $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(join(work, 'bin', 'systemctl'), 0o755);

  writeFileSync(
    join(work, 'sshd_config'),
    [
      'Port 22',
      `ListenAddress ${TARGET}`,
      `HostKey ${join(work, 'host_key')}`,
      `PidFile ${join(work, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(work, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      `SetEnv PATH=${join(work, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      '',
    ].join('\n'),
  );
  execFileSync('mkdir', ['-p', '/run/sshd']);
  // nsenter, not `ip netns exec`: that remounts /sys, and the deployed daemon needs bpffs.
  sshd = spawn('nsenter', [`--net=/run/netns/${ns.target}`, '/usr/sbin/sshd', '-D', '-e', '-f', join(work, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const deadline = Date.now() + 10_000;
  while (!nsRun(ns.target, 'ss', ['-ltn']).includes(`${TARGET}:22`)) {
    if (sshd.exitCode !== null || Date.now() > deadline) throw new Error('sshd did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

afterAll(() => {
  const pidFile = join(work ?? '/nonexistent', 'xlb.pid');
  if (existsSync(pidFile)) {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    } catch {
      // gone
    }
  }
  if (sshd?.exitCode === null) sshd.kill('SIGKILL');
  namespaces.cleanup();
  for (const path of INSTALLED) rmSync(path, { recursive: true, force: true });
  rmSync(`/sys/fs/bpf/${namespaces.prefix}`, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

function config(iface: string): string {
  const file = join(work, `xlb-${iface}.yaml`);
  writeFileSync(
    file,
    [
      `iface: ${iface}`,
      'xdp-mode: generic',
      `api: unix:${join(work, 'api.sock')}`,
      `state: ${join(work, 'state.json')}`,
      `bpffs: /sys/fs/bpf/${namespaces.prefix}`,
      'log-level: warn',
      '',
    ].join('\n'),
  );
  return file;
}

async function deploy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      'nsenter',
      [
        `--net=/run/netns/${ns.deployer}`,
        process.execPath,
        CLI,
        'deploy',
        '--hosts',
        TARGET,
        '--identity',
        join(work, 'id_ed25519'),
        ...args,
      ],
      {
        maxBuffer: 16 << 20,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('xlb deploy', () => {
  test('an unknown host key stops the deploy before anything is written', async () => {
    const res = await deploy('--config', config('eth0'), '--known-hosts', join(work, 'unknown_hosts'));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(new RegExp(`host key of ${TARGET} \\(SHA256:.*\\) is not in .*unknown_hosts: deploy stopped`));
    expect(existsSync('/opt/xlb')).toBe(false);
  });

  test('a host in known_hosts gets the release, its config (0600), the unit, and a ready daemon', async () => {
    const res = await deploy('--config', config('eth0'), '--known-hosts', join(work, 'known_hosts'));
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(new RegExp(`${TARGET}: preflight passed\\n${TARGET}: ready\\n`));
    expect(statSync('/etc/xlb/xlb.yaml').mode & 0o777).toBe(0o600);
    expect(readFileSync('/etc/systemd/system/xlb.service', 'utf8')).toMatch(/^ExecStart=.*serve --config \/etc\/xlb\/xlb\.yaml$/m);
    const status = await new ApiClient(`unix:${join(work, 'api.sock')}`).request<{ attached: boolean; interface: string }>(
      'GET',
      '/v1/status',
    );
    expect(status.body).toMatchObject({ attached: true, interface: 'eth0' });
    expect(JSON.parse(nsRun(ns.target, 'ip', ['-j', 'link', 'show', 'eth0']))[0].xdp.prog.name).toBe('xlb_balancer');
    expect(readlinkSync(LINK)).toBe('/opt/xlb/current/dist/control/cli/main.js');
    expect((await run('xlb', ['--version'], { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } })).stdout).toBe(`${VERSION}\n`);
  });

  test('a failing preflight stops the rollout and leaves the running install alone', async () => {
    const before = readFileSync('/etc/xlb/xlb.yaml', 'utf8');
    const res = await deploy('--config', config('nope0'), '--known-hosts', join(work, 'known_hosts'));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/preflight failed: interface: no interface nope0/);
    expect(readFileSync('/etc/xlb/xlb.yaml', 'utf8')).toBe(before);
    expect((await new ApiClient(`unix:${join(work, 'api.sock')}`).request('GET', '/readyz')).status).toBe(200);
  });

  test('a file or a foreign link at /usr/local/bin/xlb stops the deploy before it installs anything', async () => {
    const before = readFileSync('/etc/xlb/xlb.yaml', 'utf8');
    try {
      rmSync(LINK, { force: true }); // the deploy's link: writing through it would overwrite the installed CLI
      writeFileSync(LINK, '#!/bin/sh\necho another xlb\n');
      const overFile = await deploy('--config', config('eth0'), '--known-hosts', join(work, 'known_hosts'));
      expect(overFile.code).not.toBe(0);
      expect(overFile.stderr).toMatch(`checking ${LINK} failed (exit 1): ${LINK} exists and is not a link to an xlb CLI: move it away`);
      expect(readFileSync(LINK, 'utf8')).toBe('#!/bin/sh\necho another xlb\n');
      rmSync(LINK);
      symlinkSync('/usr/bin/true', LINK);
      const overLink = await deploy('--config', config('eth0'), '--known-hosts', join(work, 'known_hosts'));
      expect(overLink.stderr).toMatch(`${LINK} links to /usr/bin/true, not to an xlb CLI: move it away`);
      expect(readlinkSync(LINK)).toBe('/usr/bin/true');
    } finally {
      rmSync(LINK, { force: true });
    }
    expect(existsSync('/opt/xlb/previous')).toBe(false);
    expect(readFileSync('/etc/xlb/xlb.yaml', 'utf8')).toBe(before);
    expect((await new ApiClient(`unix:${join(work, 'api.sock')}`).request('GET', '/readyz')).status).toBe(200);
  }, 150_000);

  test('a pinned fingerprint: the right one upgrades in place and takes over an npm link, a wrong one is refused', async () => {
    symlinkSync('../lib/node_modules/xlb/dist/control/cli/main.js', LINK);
    const upgraded = await deploy('--config', config('eth0'), '--host-key-sha256', fingerprint(hostKey));
    expect(upgraded.stdout).toMatch(new RegExp(`${TARGET}: ready`));
    expect(existsSync('/opt/xlb/previous')).toBe(true);
    expect(readlinkSync(LINK)).toBe('/opt/xlb/current/dist/control/cli/main.js');
    const wrong = await deploy('--config', config('eth0'), '--host-key-sha256', `SHA256:${'A'.repeat(43)}`);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/is SHA256:.*, not the pinned SHA256:A+: deploy stopped/);
  }, 150_000);
});
