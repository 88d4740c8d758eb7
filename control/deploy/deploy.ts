/**
 * `xlb deploy`: rolls the built release out to hosts one at a time over SSH —
 * upload, preflight, install under /opt/xlb with a systemd unit, /etc/xlb/xlb.yaml and
 * the /usr/local/bin/xlb link, (re)start, wait for /readyz — and stops at the first
 * host that fails, leaving the rest untouched. Remote commands are the constants below.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveServeOptions } from '../daemon/options.js';
import { PACKAGE_ROOT } from '../paths.js';
import { type HostKeyPolicy, SshSession } from './ssh.js';

const execFileAsync = promisify(execFile);

const STAGING = '/opt/xlb/staging';
const CLI = 'dist/control/cli/main.js';
const UNPACK = `tar -xzf ${STAGING}/release.tar.gz -C ${STAGING}`;
const PREFLIGHT = `node ${STAGING}/${CLI} preflight --config ${STAGING}/xlb.yaml --json`;
const LINK_DIR = '/usr/local/bin';
const LINK = `${LINK_DIR}/xlb`;
const INSTALLED_CLI = `/opt/xlb/current/${CLI}`;
/** The link may replace a link to any xlb CLI (an earlier deploy's, npm install -g's), never anything else. */
const CHECK_LINK = `if [ -L ${LINK} ]; then
  case "$(readlink ${LINK})" in
    */${CLI}) ;;
    *) echo "${LINK} links to $(readlink ${LINK}), not to an xlb CLI: move it away" >&2; exit 1 ;;
  esac
elif [ -e ${LINK} ]; then
  echo "${LINK} exists and is not a link to an xlb CLI: move it away" >&2; exit 1
fi`;
const PROMOTE = [
  'rm -rf /opt/xlb/previous',
  'if [ -e /opt/xlb/current ]; then mv /opt/xlb/current /opt/xlb/previous; fi',
  `mv ${STAGING} /opt/xlb/current`,
  'install -d -m 700 /etc/xlb',
  'install -m 600 /opt/xlb/current/xlb.yaml /etc/xlb/xlb.yaml',
  `chmod 755 ${INSTALLED_CLI}`,
  `install -d ${LINK_DIR}`,
  `ln -sfn ${INSTALLED_CLI} ${LINK}`,
].join(' && ');
const START = 'systemctl daemon-reload && systemctl enable xlb && systemctl restart xlb';
const READY = `node ${INSTALLED_CLI} ready --config /etc/xlb/xlb.yaml --timeout 60s`;
export const UNIT = `[Unit]
Description=xlb XDP load balancer
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/env node ${INSTALLED_CLI} serve --config /etc/xlb/xlb.yaml
Restart=always
RestartSec=1
# Stopping withdraws BGP announcements; the XDP program stays attached until xlb down.
KillSignal=SIGTERM

[Install]
WantedBy=multi-user.target
`;

export interface DeployOptions {
  hosts: string[];
  port: number;
  user: string;
  identity: string;
  hostKeys: HostKeyPolicy;
  /** The `xlb serve` YAML to install on every host. */
  config: string;
}

/** Packs what a host needs to run: built code, BPF objects, the addon, production modules. */
async function buildRelease(dir: string): Promise<string> {
  const { stdout } = await execFileAsync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: PACKAGE_ROOT, maxBuffer: 16 << 20 });
  const modules = [
    ...new Set(
      stdout
        .split('\n')
        .filter((p) => p.startsWith(`${PACKAGE_ROOT}/node_modules/`))
        .map((p) => p.slice(PACKAGE_ROOT.length + 1)),
    ),
  ];
  const tarball = join(dir, 'release.tar.gz');
  const files = [
    'package.json',
    'dist',
    'bpf/build',
    'native/index.js',
    'native/package.json',
    'native/build/Release/xlb_native.node',
    'scripts/setup.sh',
    ...modules,
  ];
  await execFileAsync('tar', ['-czf', tarball, '-C', PACKAGE_ROOT, '--', ...files], { maxBuffer: 16 << 20 });
  return tarball;
}

async function run(session: SshSession, step: string, command: string): Promise<string> {
  const result = await session.exec(command);
  if (result.code !== 0)
    throw new Error(`${session.target.host}: ${step} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

export async function deploy(options: DeployOptions, log: (line: string) => void): Promise<void> {
  const configText = readFileSync(options.config, 'utf8');
  resolveServeOptions({}, options.config); // a bad config stops here, naming the option
  const privateKey = readFileSync(options.identity);
  const dir = mkdtempSync(join(tmpdir(), 'xlb-release-'));
  try {
    const tarball = readFileSync(await buildRelease(dir));
    log(`release: ${(tarball.length / 2 ** 20).toFixed(1)} MiB`);
    for (const host of options.hosts) {
      log(`${host}: connecting`);
      const session = await SshSession.connect({
        host,
        port: options.port,
        username: options.user,
        privateKey,
        hostKeys: options.hostKeys,
      });
      try {
        await run(session, 'clearing staging', `rm -rf ${STAGING}`);
        await session.writeFile(`${STAGING}/release.tar.gz`, tarball, 0o600);
        await session.writeFile(`${STAGING}/xlb.yaml`, configText, 0o600);
        await run(session, 'unpacking', UNPACK);
        const checks = await session.exec(PREFLIGHT);
        if (checks.code !== 0) {
          const failed = (
            JSON.parse(checks.stdout || '{"checks":[]}') as { checks: { name: string; ok: boolean; detail: string }[] }
          ).checks.filter((c) => !c.ok);
          throw new Error(`${host}: preflight failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ') || checks.stderr.trim()}`);
        }
        log(`${host}: preflight passed`);
        await run(session, `checking ${LINK}`, CHECK_LINK);
        await run(session, 'installing', PROMOTE);
        await session.writeFile('/etc/systemd/system/xlb.service', UNIT);
        await run(session, 'starting', START);
        await run(session, 'waiting for /readyz', READY);
        log(`${host}: ready`);
      } finally {
        session.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
