/** The verbs that act on this host: serve, down, decap, deploy, preflight. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { type XdpMode, xdpModeSchema } from '../dataplane/xdp-mode.js';
import { installDecap, removeDecap } from '../daemon/decap-command.js';
import { down } from '../daemon/down.js';
import { resolveServeOptions, serveOptionDefault, serveOptionsSchema } from '../daemon/options.js';
import { serve } from '../daemon/serve.js';
import { clsactText } from '../daemon/tc-filters.js';
import { deploy } from '../deploy/deploy.js';
import { preflight } from '../deploy/preflight.js';
import { CliError } from './errors.js';
import { table } from './format.js';

/** Ends each serve flag's help with its default from the options schema, the one place defaults are written. */
function withSchemaDefaults(command: Command): Command {
  for (const option of command.options) {
    const value = serveOptionDefault(option.attributeName());
    if (value !== undefined) option.description += ` (default ${value})`;
  }
  return command;
}

const xdpModeOption = (help: string) => new Option('--xdp-mode <mode>', help).choices(xdpModeSchema.options);

export function addHostCommands(program: Command): void {
  const serveCommand = program
    .command('serve')
    .description('run the daemon: attach the balancer to an interface and serve the API')
    .option('--config <file>', 'YAML file of options (keys as the long flags)')
    .option('--iface <name>', 'interface to balance on (required)')
    .option('--xdp-mode <mode>', 'native or generic')
    .option('--api <endpoint>', 'listen on HOST:PORT or unix:/path')
    .option('--bpffs <dir>', 'pin maps here')
    .option('--state <file>', 'desired state file')
    .option('--store <url>', 'keep the desired state in etcd instead: etcd://HOST:PORT/PREFIX (fleet-wide)')
    .option('--token-file <file>', 'require this bearer token on /v1 (mode 600)')
    .option('--tls-cert <file>', 'serve the API over HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this key (PEM)')
    .option('--mutations-per-minute <n>', 'changes each API client may make per minute')
    .option('--gateway-mac <mac>', 'ipip next hop for off-link backends (default: default route neighbour)')
    .option('--source-v4 <ip[/prefix]>', 'ipip outer IPv4 source; a prefix varies its host bits per flow')
    .option('--source-v6 <ip[/prefix]>', 'ip6ip6 / 4in6 outer IPv6 source; a prefix varies its host bits per flow')
    .option('--mtu <bytes>', 'largest tunnelled packet')
    .option('--ring-size <prime>', 'Maglev ring size')
    .option('--max-vips <n>', 'VIP capacity')
    .option('--max-backends <n>', 'backend capacity (all VIPs)')
    .option('--max-flows <n>', 'connection-table flows (16 bytes each, rounded up to 4 times a power of two)')
    .option('--flow-idle-timeout <seconds>', 'idle time after which an established flow may give its table entry to a new flow')
    .option('--hash-seed <n>', 'flow hash seed: the same on every node of a fleet')
    .option('--flood-threshold <n>', 'new flows per second over all CPUs that count as a flood (2 s at it starts one)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--bgp', 'announce VIPs with at least one healthy backend through BIRD')
    .option('--bgp-asn <asn>', 'our AS number')
    .option('--bgp-peer <address@asn...>', 'BGP neighbour(s), e.g. 198.18.0.254@65000')
    .option('--bgp-router-id <ipv4>', "BIRD router id (default: the interface's IPv4 address)")
    .option('--bird-dir <dir>', 'BIRD configuration and control socket');
  withSchemaDefaults(serveCommand).action(async (flags: Record<string, string | string[] | boolean | undefined>) => {
    const { config, ...rest } = flags as Record<string, string | undefined>;
    const options = resolveServeOptions(rest, config);
    const daemon = await serve(options);
    // The data plane forwards whatever the control plane does: a failure nothing caught is recorded, not an exit.
    process.on('unhandledRejection', (reason) => daemon.errors.record('unhandled', reason));
    process.on('uncaughtException', (error) => daemon.errors.record('unhandled', error));
    const stop = async (signal: NodeJS.Signals) => {
      await daemon.close(signal);
      process.exit(0);
    };
    process.once('SIGTERM', (signal) => void stop(signal));
    process.once('SIGINT', (signal) => void stop(signal));
  });

  program
    .command('down')
    .description('detach the balancer and remove its pinned maps (forwarding stops); refuses while a daemon owns them')
    .requiredOption('--iface <name>', 'interface')
    .addOption(xdpModeOption('look only in this mode; by default in both'))
    .option('--bpffs <dir>', 'pinned maps', serveOptionsSchema.shape.bpffs.parse(undefined))
    .option('--bird-dir <dir>', 'stop the BIRD that xlb serve --bgp started here', serveOptionsSchema.shape.birdDir.parse(undefined))
    .option('--force', 'go ahead even while an xlb serve owns this data plane')
    .action(async (options: { iface: string; xdpMode?: XdpMode; bpffs: string; birdDir: string; force?: boolean }) => {
      const { detached, removed, removedDir, clsact, probeRoutes } = await down(options);
      const dir = removedDir
        ? `; removed ${options.bpffs}`
        : existsSync(options.bpffs)
          ? `; ${options.bpffs} keeps what xlb did not make`
          : '';
      const program = detached ? `detached from ${options.iface} (${detached} mode)` : `nothing attached on ${options.iface}`;
      const routes = probeRoutes ? `; removed ${probeRoutes} via-vip probe routes` : '';
      process.stdout.write(`${program}; removed ${removed.length} pins${dir}${clsactText(options.iface, clsact)}${routes}\n`);
    });

  program
    .command('decap')
    .description('on a backend: attach xlb_decap, which strips the tunnels of packets to these addresses')
    .requiredOption('--iface <name>', 'interface that receives the tunnelled packets')
    .option('--address <ip...>', "this host's addresses that tunnels are sent to")
    .addOption(xdpModeOption('XDP attach mode').default(xdpModeSchema.enum.native))
    .option('--bpffs <dir>', 'pin the address map here', '/sys/fs/bpf/xlb-decap')
    .option('--remove', 'detach it and remove the pins instead')
    .action((options: { iface: string; address?: string[]; xdpMode: XdpMode; bpffs: string; remove?: boolean }) => {
      if (options.remove) {
        const { detached } = removeDecap(options);
        process.stdout.write(detached ? `detached xlb_decap from ${options.iface}\n` : `xlb_decap was not attached to ${options.iface}\n`);
        return;
      }
      if (!options.address?.length) throw new CliError('--address is required (one or more)');
      const addresses = installDecap({ ...options, addresses: options.address });
      process.stdout.write(`xlb_decap on ${options.iface} for ${addresses.join(', ')}\n`);
    });

  program
    .command('deploy')
    .description('roll the built release out to hosts over SSH, one at a time')
    .requiredOption('--hosts <list>', 'comma-separated hosts, in rollout order')
    .requiredOption('--config <file>', 'the xlb serve YAML to install on each host')
    .option('--user <name>', 'SSH user (root, or one that may write /opt, /etc and run systemctl)', 'root')
    .option('--port <port>', 'SSH port', '22')
    .option('--identity <file>', 'SSH private key', join(homedir(), '.ssh', 'id_ed25519'))
    .option('--known-hosts <file>', 'accept only host keys listed here', join(homedir(), '.ssh', 'known_hosts'))
    .option('--host-key-sha256 <fingerprint>', 'accept only this host key (SHA256:...), instead of known_hosts')
    .action(
      async (o: {
        hosts: string;
        config: string;
        user: string;
        port: string;
        identity: string;
        knownHosts: string;
        hostKeySha256?: string;
      }) => {
        const hosts = o.hosts
          .split(',')
          .map((h) => h.trim())
          .filter(Boolean);
        const bad = hosts.find((h) => !/^[A-Za-z0-9.:-]+$/.test(h));
        if (bad !== undefined || !hosts.length) throw new CliError(`--hosts: not a host name or address: ${JSON.stringify(bad ?? '')}`);
        const port = Number(o.port);
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`--port: not a port: ${JSON.stringify(o.port)}`);
        if (o.hostKeySha256 && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(o.hostKeySha256))
          throw new CliError('--host-key-sha256: expected SHA256: and 43 base64 characters');
        const hostKeys = o.hostKeySha256 ? { fingerprint: o.hostKeySha256 } : { knownHosts: o.knownHosts };
        await deploy({ hosts, port, user: o.user, identity: o.identity, hostKeys, config: o.config }, (line) =>
          process.stdout.write(`${line}\n`),
        );
      },
    );

  program
    .command('preflight')
    .description('on a host: can xlb serve run here with this configuration (a YAML, flags, or both)?')
    .option('--config <file>', 'the xlb serve YAML')
    .option('--iface <name>', 'interface to balance on (wins over the YAML)')
    .addOption(xdpModeOption('XDP attach mode (wins over the YAML)'))
    .option('--json', 'print JSON: {checks}')
    .action(async (o: { config?: string; iface?: string; xdpMode?: XdpMode; json?: boolean }) => {
      if (o.config === undefined && o.iface === undefined) throw new CliError('give --config, --iface or both');
      const checks = await preflight({ config: o.config, flags: { iface: o.iface, xdpMode: o.xdpMode } });
      process.stdout.write(
        o.json
          ? JSON.stringify({ checks }) + '\n'
          : table(
              ['CHECK', 'OK', 'DETAIL'],
              checks.map((c) => [c.name, c.ok ? (c.warning ? 'warn' : 'yes') : 'NO', c.detail]),
            ) + '\n',
      );
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });
}
