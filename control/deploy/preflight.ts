/**
 * `xlb preflight --config FILE` or `--iface NAME`, run on a target host (by `xlb deploy`,
 * or by hand): can xlb run here with this configuration? Every check names what it found.
 */
import { execFile } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { type BpfError, ifNameToIndex } from '@xlb/native';
import { vethPeer, vlanOffload, vlanOffloadText } from '../daemon/interface-checks.js';
import { resolveServeOptions } from '../daemon/options.js';
import { ephemeralRangeNote, heldProbePortsNote, sysctl } from '../daemon/probe-ports.js';

const execFileAsync = promisify(execFile);

/** `warning`: worth knowing, yet no reason to fail the preflight (ok stays true). */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  warning?: boolean;
}

const BPF_FS_MAGIC = 0xcafe4a11;
const PACKAGES = ['libbpf1', 'libelf1', 'iproute2', 'ethtool'];
/** Drivers with native XDP (XDP_TX included) in mainline Linux. */
const NATIVE_XDP_DRIVERS = new Set([
  'mlx5_core',
  'mlx4_en',
  'i40e',
  'ice',
  'ixgbe',
  'ixgbevf',
  'igb',
  'igc',
  'bnxt_en',
  'ena',
  'virtio_net',
  'veth',
  'tun',
  'nfp',
  'qede',
  'sfc',
  'gve',
  'hv_netvsc',
  'stmmac',
  'thunder-nicvf',
  'mvneta',
  'mvpp2',
  'dpaa2-eth',
  'enetc',
  'fec',
  'lan966x-switch',
  'atlantic',
  'octeontx2-nicpf',
]);

const version = (text: string) => text.split(/[.-]/).slice(0, 2).map(Number);
const atLeast = ([haveMajor = 0, haveMinor = 0]: number[], [wantMajor = 0, wantMinor = 0]: number[]) =>
  haveMajor > wantMajor || (haveMajor === wantMajor && haveMinor >= wantMinor);

/** What to check: a serve YAML, serve flags (`iface`, `xdpMode`) or both, the flags winning as in `xlb serve`. */
export interface PreflightInput {
  config?: string | undefined;
  flags: Record<string, unknown>;
}

export async function preflight({ config, flags }: PreflightInput): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  let options: ReturnType<typeof resolveServeOptions> | null = null;
  try {
    options = resolveServeOptions(flags, config);
    check('config', true, config ?? 'no config file: the flags and the defaults');
  } catch (error) {
    check('config', false, (error as Error).message);
  }
  check('kernel', atLeast(version(release()), [5, 18]), `${release()} (needs 5.18 or newer)`);
  check('btf', existsSync('/sys/kernel/btf/vmlinux'), '/sys/kernel/btf/vmlinux');
  let bpffs = false;
  let unreadable = '';
  try {
    bpffs = statfsSync('/sys/fs/bpf').type === BPF_FS_MAGIC;
  } catch (error) {
    unreadable = ` (${(error as Error).message})`;
  }
  check('bpffs', bpffs, bpffs ? '/sys/fs/bpf is bpffs' : `/sys/fs/bpf is not bpffs${unreadable}: mount -t bpf bpf /sys/fs/bpf`);
  check('node', atLeast(version(process.versions.node), [20, 0]), `Node.js ${process.versions.node} (needs 20 or newer)`);
  checks.push(await probePortsCheck());

  const missing: string[] = [];
  for (const name of PACKAGES) {
    const installed = await execFileAsync('dpkg-query', ['-W', '-f=${Status}', name]).then(
      (r) => r.stdout.includes('install ok installed'),
      () => false,
    );
    if (!installed) missing.push(name);
  }
  check('packages', missing.length === 0, missing.length ? `missing: ${missing.join(' ')}` : PACKAGES.join(' '));

  if (options) {
    const iface = options.iface;
    let problem = '';
    try {
      ifNameToIndex(iface);
    } catch (error) {
      problem = (error as BpfError).code === 'ENODEV' ? `no interface ${iface}` : (error as Error).message;
    }
    const present = problem === '';
    check('interface', present, present ? iface : problem);
    if (present) {
      const driver = await execFileAsync('ethtool', ['-i', iface]).then(
        (r) => /^driver: (.*)$/m.exec(r.stdout)?.[1] ?? 'unknown',
        () => 'unknown',
      );
      const ok = options.xdpMode === 'generic' || NATIVE_XDP_DRIVERS.has(driver);
      check('xdp', ok, ok ? `driver ${driver}, ${options.xdpMode} mode` : `driver ${driver} has no native XDP: use xdp-mode: generic`);
      const peer = await vethPeer(iface);
      checks.push({ name: 'veth-peer', ok: true, detail: peer.text, ...(peer.warn ? { warning: true } : {}) });
      const offload = await vlanOffload(iface);
      checks.push({
        name: 'vlan-offload',
        ok: true,
        detail: vlanOffloadText(iface, offload),
        ...(offload?.rx.startsWith('on') ? { warning: true } : {}),
      });
    }
  }
  return checks;
}

/** Whether the kernel's ephemeral range reaches into the probe ports (xlb serve reserves them), or other processes hold some: warnings. */
async function probePortsCheck(): Promise<Check> {
  try {
    const { overlaps, text } = ephemeralRangeNote(sysctl('ip_local_port_range'));
    const held = await heldProbePortsNote();
    const detail = held === null ? text : `${text}; ${held}`;
    return { name: 'probe-ports', ok: true, detail, ...(overlaps || held !== null ? { warning: true } : {}) };
  } catch (error) {
    return {
      name: 'probe-ports',
      ok: true,
      detail: `could not read net.ipv4.ip_local_port_range: ${(error as Error).message}`,
      warning: true,
    };
  }
}
