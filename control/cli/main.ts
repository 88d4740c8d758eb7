#!/usr/bin/env node
/**
 * The xlb command: `serve` and `down` run on the load balancer; every other verb
 * talks to a daemon's API (--api, default 127.0.0.1:9180) and prints a table, or
 * JSON with --json.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { StatsView, VipView } from '../controller/views.js';
import { resolveServeOptions } from '../daemon/options.js';
import { deploy } from '../deploy/deploy.js';
import { preflight } from '../deploy/preflight.js';
import { installDecap, removeDecap } from '../daemon/decap-command.js';
import { down } from '../daemon/down.js';
import { serve } from '../daemon/serve.js';
import { MiB, readRegularFile } from '../files.js';
import { forwardingModes } from '../forwarding/registry.js';
import { checkTypes } from '../checks/registry.js';
import { VERSION } from '../paths.js';
import { portParamSchema } from '../state/schema.js';
import { parseWholeNumber } from '../net/whole-number.js';
import { readTokenFile } from '../token-file.js';
import { ApiClient, type ApiResponse, vipPath } from './client.js';
import { formatBytes, formatRate, table } from './format.js';

class CliError extends Error {}

/** Registry names for a help text: "a, b or c". */
const orList = (names: Iterable<string>) => [...names].join(', ').replace(/, ([^,]*)$/, ' or $1');

interface ClientOptions {
  api: string;
  tokenFile?: string;
  caFile?: string;
  json?: boolean;
}

function client(options: ClientOptions): ApiClient {
  const token = options.tokenFile ? readTokenFile(options.tokenFile) : undefined;
  return new ApiClient(options.api, token, options.caFile ? readRegularFile(options.caFile, '--ca-file', MiB) : undefined);
}

async function call<T>(options: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  let response: ApiResponse<T | { error: { code: string; message: string; details?: unknown } }>;
  try {
    response = await client(options).request(method, path, body);
  } catch (error) {
    throw new CliError(`cannot reach the API at ${options.api}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (response.status >= 400) {
    const error = (response.body as { error?: { message: string } }).error;
    throw new CliError(`${response.status}: ${error?.message ?? String(response.body)}`);
  }
  return response.body as T;
}

const print = (options: ClientOptions, value: unknown, human: () => string) => {
  process.stdout.write(options.json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
};

function wholeNumber(option: string, text: string): number;
function wholeNumber(option: string, text: string | undefined): number | undefined;
function wholeNumber(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const number = parseWholeNumber(text);
  if (number === null) throw new CliError(`${option}: not a whole number in decimal digits: ${JSON.stringify(text)}`);
  return number;
}

function decimal(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) throw new CliError(`${option}: not a decimal number like 0.5: ${JSON.stringify(text)}`);
  return Number(text);
}

/** A VIP's port argument, checked before it goes into a URL. */
function portArgument(text: string): string {
  if (!portParamSchema.safeParse(text).success)
    throw new CliError(`port: not a port (0..65535 in decimal digits): ${JSON.stringify(text)}`);
  return text;
}

function vipTable(vips: VipView[]): string {
  return table(
    ['VIP', 'FORWARDING', 'AFFINITY', 'CHECK', 'BACKENDS', 'IN RING', 'PANIC'],
    vips.map((v) => [
      `${v.protocol}/${v.address}:${v.port}`,
      v.forwarding,
      v.affinity,
      v.healthCheck.type,
      String(v.backends.length),
      String(v.ringBackends),
      v.panic ? 'yes' : 'no',
    ]),
  );
}

function backendTable(vip: VipView): string {
  return table(
    ['BACKEND', 'WEIGHT', 'STATE', 'HEALTH', 'IN RING', 'SLOTS', 'MAC', 'REASON'],
    vip.backends.map((b) => [
      b.address,
      String(b.weight),
      b.state,
      b.health,
      b.inRing ? 'yes' : 'no',
      String(b.slots),
      b.mac ?? '-',
      b.reason ?? b.healthReason ?? '',
    ]),
  );
}

function statsTable(stats: StatsView): string {
  const rows: string[][] = [];
  for (const v of stats.vips) {
    rows.push([
      `${v.protocol}/${v.address}:${v.port}`,
      '',
      String(v.packets),
      formatBytes(v.bytes),
      formatRate(v.packetsPerSecond, 'pps'),
      formatRate(v.bytesPerSecond * 8, 'bps'),
    ]);
    for (const b of v.backends) {
      const share = v.packets ? `${((100 * b.packets) / v.packets).toFixed(1)}%` : '-';
      rows.push([
        `  ${b.address}`,
        share,
        String(b.packets),
        formatBytes(b.bytes),
        formatRate(b.packetsPerSecond, 'pps'),
        formatRate(b.bytesPerSecond * 8, 'bps'),
      ]);
    }
  }
  return table(['VIP / BACKEND', 'SHARE', 'PACKETS', 'BYTES', 'RATE', 'THROUGHPUT'], rows);
}

export function buildCli(): Command {
  const program = new Command('xlb').version(VERSION).description('XDP layer-4 load balancer').showHelpAfterError();
  const withClient = (command: Command) =>
    command
      .addOption(
        new Option('--api <endpoint>', 'daemon API: HOST:PORT, https://HOST:PORT or unix:/path').env('XLB_API').default('127.0.0.1:9180'),
      )
      .addOption(new Option('--ca-file <file>', 'CA certificate (PEM) to trust for an https API').env('XLB_CA_FILE'))
      .addOption(new Option('--token-file <file>', 'bearer token for the API').env('XLB_TOKEN_FILE'))
      .option('--json', 'print JSON');

  program
    .command('serve')
    .description('run the daemon: attach the balancer to an interface and serve the API')
    .option('--config <file>', 'YAML file of options (keys as the long flags)')
    .option('--iface <name>', 'interface to balance on (required)')
    .option('--xdp-mode <mode>', 'native or generic (default native)')
    .option('--api <endpoint>', 'listen on HOST:PORT or unix:/path (default 127.0.0.1:9180)')
    .option('--bpffs <dir>', 'pin maps here (default /sys/fs/bpf/xlb)')
    .option('--state <file>', 'desired state file (default /var/lib/xlb/state.json)')
    .option('--store <url>', 'keep the desired state in etcd instead: etcd://HOST:PORT/PREFIX (fleet-wide)')
    .option('--token-file <file>', 'require this bearer token on /v1 (mode 600)')
    .option('--tls-cert <file>', 'serve the API over HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this key (PEM)')
    .option('--mutations-per-minute <n>', 'changes each API client may make per minute (default 600)')
    .option('--gateway-mac <mac>', 'ipip next hop for off-link backends (default: default route neighbour)')
    .option('--source-v4 <ip[/prefix]>', 'ipip outer IPv4 source; a prefix varies its host bits per flow')
    .option('--source-v6 <ip[/prefix]>', 'ip6ip6 / 4in6 outer IPv6 source; a prefix varies its host bits per flow')
    .option('--mtu <bytes>', 'largest tunnelled packet (default 1500)')
    .option('--ring-size <prime>', 'Maglev ring size (default 65537)')
    .option('--max-vips <n>', 'VIP capacity')
    .option('--max-backends <n>', 'backend capacity (all VIPs)')
    .option('--max-flows <n>', 'connection-table flows (16 bytes each, rounded up to 4 times a power of two)')
    .option('--hash-seed <n>', 'flow hash seed: the same on every node of a fleet')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--bgp', 'announce VIPs with at least one healthy backend through BIRD')
    .option('--bgp-asn <asn>', 'our AS number (default 65001)')
    .option('--bgp-peer <address@asn...>', 'BGP neighbour(s), e.g. 198.18.0.254@65000')
    .option('--bgp-router-id <ipv4>', "BIRD router id (default: the interface's IPv4 address)")
    .option('--bird-dir <dir>', 'BIRD configuration and control socket (default /run/xlb/bird)')
    .action(async (flags: Record<string, string | string[] | boolean | undefined>) => {
      const { config, ...rest } = flags as Record<string, string | undefined>;
      const options = resolveServeOptions(rest, config);
      const daemon = await serve(options);
      // The data plane forwards whatever the control plane does: a failure nothing caught is recorded, not an exit.
      process.on('unhandledRejection', (reason) => daemon.errors.record('unhandled', reason));
      process.on('uncaughtException', (error) => daemon.errors.record('unhandled', error));
      const stop = async () => {
        await daemon.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });

  program
    .command('down')
    .description('detach the balancer and remove its pinned maps (forwarding stops); refuses while a daemon owns them')
    .requiredOption('--iface <name>', 'interface')
    .option('--xdp-mode <mode>', 'look only in this mode (native or generic); by default in both')
    .option('--bpffs <dir>', 'pinned maps', '/sys/fs/bpf/xlb')
    .option('--bird-dir <dir>', 'stop the BIRD that xlb serve --bgp started here', '/run/xlb/bird')
    .option('--force', 'go ahead even while an xlb serve owns this data plane')
    .action(async (options: { iface: string; xdpMode?: 'native' | 'generic'; bpffs: string; birdDir: string; force?: boolean }) => {
      const { detached, removed, removedDir } = await down(options);
      const dir = removedDir
        ? `; removed ${options.bpffs}`
        : existsSync(options.bpffs)
          ? `; ${options.bpffs} keeps what xlb did not make`
          : '';
      process.stdout.write(
        `${detached ? `detached from ${options.iface} (${detached} mode)` : `nothing attached on ${options.iface}`}; removed ${removed.length} pins${dir}\n`,
      );
    });

  program
    .command('decap')
    .description('on a backend: attach xlb_decap, which strips the tunnels of packets to these addresses')
    .requiredOption('--iface <name>', 'interface that receives the tunnelled packets')
    .option('--address <ip...>', "this host's addresses that tunnels are sent to")
    .option('--xdp-mode <mode>', 'native or generic', 'native')
    .option('--bpffs <dir>', 'pin the address map here', '/sys/fs/bpf/xlb-decap')
    .option('--remove', 'detach it and remove the pins instead')
    .action((options: { iface: string; address?: string[]; xdpMode: 'native' | 'generic'; bpffs: string; remove?: boolean }) => {
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
    .description('on a host: can xlb serve run here with this configuration?')
    .requiredOption('--config <file>', 'the xlb serve YAML')
    .option('--json', 'print JSON')
    .action(async (o: { config: string; json?: boolean }) => {
      const checks = await preflight(o.config);
      process.stdout.write(
        o.json
          ? JSON.stringify(checks) + '\n'
          : table(
              ['CHECK', 'OK', 'DETAIL'],
              checks.map((c) => [c.name, c.ok ? (c.warning ? 'warn' : 'yes') : 'NO', c.detail]),
            ) + '\n',
      );
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });

  program
    .command('ready')
    .description('wait until the daemon of this configuration answers /readyz with 200')
    .requiredOption('--config <file>', 'the xlb serve YAML')
    .option('--timeout-ms <ms>', 'give up after', '60000')
    .action(async (o: { config: string; timeoutMs: string }) => {
      const options = resolveServeOptions({}, o.config);
      const api =
        options.api.kind === 'unix'
          ? `unix:${options.api.path}`
          : `${options.api.host.includes(':') ? `[${options.api.host}]` : options.api.host}:${options.api.port}`;
      const deadline = Date.now() + wholeNumber('--timeout-ms', o.timeoutMs);
      const client = new ApiClient(api, options.tokenFile ? readTokenFile(options.tokenFile) : undefined);
      for (;;) {
        const status = await client.request('GET', '/readyz').then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new CliError(`not ready after ${o.timeoutMs} ms (last status ${status || 'unreachable'})`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    });

  withClient(program.command('status').description('daemon status')).action(async (options: ClientOptions) => {
    const status = await call<Record<string, unknown> & { counts: Record<string, number> }>(options, 'GET', '/v1/status');
    print(options, status, () =>
      table(
        ['FIELD', 'VALUE'],
        Object.entries({
          ...status,
          counts: undefined,
          ...Object.fromEntries(Object.entries(status.counts).map(([k, v]) => [`counts.${k}`, v])),
        })
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [
            k,
            Array.isArray(v) ? (v as unknown[]).map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('; ') || '-' : String(v),
          ]),
      ),
    );
  });

  const vip = program.command('vip').description('manage VIPs');
  withClient(
    vip
      .command('add <protocol> <address> <port>')
      .description('create or replace a VIP')
      .requiredOption('--forwarding <method>', orList(forwardingModes.keys()))
      .option('--affinity <kind>', 'flow or source-ip')
      .option('--no-conntrack', 'do not keep flows in the connection table')
      .option('--panic-threshold <share>', '0..1')
      .option('--health-check <type>', orList(checkTypes.keys()))
      .option('--hc-port <port>', 'health-check port (default the VIP port)')
      .option('--hc-path <path>', 'HTTP path')
      .option('--hc-expect-status <code>', 'HTTP status meaning healthy')
      .option('--hc-interval-ms <ms>', 'between checks')
      .option('--hc-timeout-ms <ms>', 'per check')
      .option('--hc-rise <n>', 'successes to become healthy')
      .option('--hc-fall <n>', 'failures to become unhealthy'),
  ).action(async (protocol: string, address: string, port: string, o: ClientOptions & Record<string, string | boolean | undefined>) => {
    const healthCheck =
      o.healthCheck === undefined
        ? undefined
        : {
            type: o.healthCheck,
            port: wholeNumber('--hc-port', o.hcPort as string | undefined),
            path: o.hcPath,
            expectStatus: wholeNumber('--hc-expect-status', o.hcExpectStatus as string | undefined),
            intervalMs: wholeNumber('--hc-interval-ms', o.hcIntervalMs as string | undefined),
            timeoutMs: wholeNumber('--hc-timeout-ms', o.hcTimeoutMs as string | undefined),
            rise: wholeNumber('--hc-rise', o.hcRise as string | undefined),
            fall: wholeNumber('--hc-fall', o.hcFall as string | undefined),
          };
    const body = {
      forwarding: o.forwarding,
      affinity: o.affinity,
      conntrack: o.conntrack,
      panicThreshold: decimal('--panic-threshold', o.panicThreshold as string | undefined),
      healthCheck,
    };
    const result = await call<VipView>(o, 'PUT', vipPath(protocol, address, portArgument(port)), body);
    print(o, result, () => vipTable([result]));
  });
  withClient(vip.command('rm <protocol> <address> <port>').description('remove a VIP')).action(
    async (protocol: string, address: string, port: string, o: ClientOptions) => {
      await call(o, 'DELETE', vipPath(protocol, address, portArgument(port)));
      print(o, { removed: true }, () => `removed ${protocol}/${address}:${port}`);
    },
  );
  withClient(vip.command('ls').description('list VIPs')).action(async (o: ClientOptions) => {
    const { vips } = await call<{ vips: VipView[] }>(o, 'GET', '/v1/vips');
    print(o, { vips }, () => vipTable(vips));
  });

  const backend = program.command('backend').description("manage a VIP's backends");
  const backendArgs = '<protocol> <vip> <port> <backend>';
  withClient(
    backend.command(`add ${backendArgs}`).description('add or update a backend (active)').option('--weight <n>', 'relative weight', '1'),
  ).action(async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions & { weight: string }) => {
    const result = await call<VipView>(o, 'PUT', vipPath(protocol, vipAddress, portArgument(port), address), {
      weight: wholeNumber('--weight', o.weight),
      state: 'active',
    });
    print(o, result, () => backendTable(result));
  });
  withClient(backend.command(`drain ${backendArgs}`).description('stop new flows to a backend; existing ones go on')).action(
    async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions) => {
      const current = await call<VipView>(o, 'GET', vipPath(protocol, vipAddress, portArgument(port)));
      const found = current.backends.find((b) => b.address === address || b.address === address.toLowerCase());
      if (!found) throw new CliError(`backend ${address} is not in ${protocol}/${vipAddress}:${port}`);
      const result = await call<VipView>(o, 'PUT', vipPath(protocol, vipAddress, port, address), { weight: found.weight, state: 'drain' });
      print(o, result, () => backendTable(result));
    },
  );
  withClient(backend.command(`rm ${backendArgs}`).description('remove a backend')).action(
    async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions) => {
      await call(o, 'DELETE', vipPath(protocol, vipAddress, portArgument(port), address));
      print(o, { removed: true }, () => `removed ${address} from ${protocol}/${vipAddress}:${port}`);
    },
  );
  withClient(backend.command('ls <protocol> <vip> <port>').description("list a VIP's backends")).action(
    async (protocol: string, vipAddress: string, port: string, o: ClientOptions) => {
      const result = await call<VipView>(o, 'GET', vipPath(protocol, vipAddress, portArgument(port)));
      print(o, result.backends, () => backendTable(result));
    },
  );

  withClient(
    program.command('stats').description('packets, bytes and rates per VIP and backend').option('--watch', 'refresh every second'),
  ).action(async (o: ClientOptions & { watch?: boolean }) => {
    const show = async () => {
      const stats = await call<StatsView>(o, 'GET', '/v1/stats');
      if (o.watch && !o.json) process.stdout.write('\x1b[2J\x1b[H');
      print(o, stats, () => statsTable(stats));
    };
    await show();
    if (!o.watch) return;
    await new Promise<never>(() => setInterval(() => void show().catch((e) => fail(e)), 1000));
  });
  return program;
}

function fail(error: unknown): never {
  process.stderr.write(`xlb: ${(error as Error).message}\n`);
  process.exit(error instanceof CliError ? 1 : 2);
}

buildCli().parseAsync(process.argv).catch(fail);
