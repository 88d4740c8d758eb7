/** The verbs that talk to a daemon's API: ready, status, vip, backend, stats. */
import { Command, Option } from 'commander';
import { checkTypes } from '../checks/registry.js';
import type { StatsView, VipView } from '../controller/views.js';
import { resolveServeOptions, serveOptionDefault } from '../daemon/options.js';
import { MiB, readRegularFile } from '../files.js';
import { forwardingModes } from '../forwarding/registry.js';
import { readTokenFile } from '../token-file.js';
import { decimal, orList, portArgument, wholeNumber } from './arguments.js';
import { addCheckFlags, checkFromFlags } from './check-flags.js';
import { ApiClient, type ApiResponse, vipPath } from './client.js';
import { CliError, fail } from './errors.js';
import { table } from './format.js';
import { backendTable, statsTable, vipTable } from './tables.js';

export interface ClientOptions {
  api: string;
  tokenFile?: string;
  caFile?: string;
  json?: boolean;
}

export function client(options: ClientOptions): ApiClient {
  const token = options.tokenFile ? readTokenFile(options.tokenFile) : undefined;
  return new ApiClient(options.api, token, options.caFile ? readRegularFile(options.caFile, '--ca-file', MiB) : undefined);
}

export const unreachable = (options: ClientOptions, error: unknown) =>
  new CliError(`cannot reach the API at ${options.api}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);

async function call<T>(options: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  let response: ApiResponse<T | { error: { code: string; message: string; details?: unknown } }>;
  try {
    response = await client(options).request(method, path, body);
  } catch (error) {
    throw unreachable(options, error);
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

export const withClient = (command: Command) =>
  command
    .addOption(
      new Option('--api <endpoint>', 'daemon API: HOST:PORT, https://HOST:PORT or unix:/path')
        .env('XLB_API')
        .default(serveOptionDefault('api')),
    )
    .addOption(new Option('--ca-file <file>', 'CA certificate (PEM) to trust for an https API').env('XLB_CA_FILE'))
    .addOption(new Option('--token-file <file>', 'bearer token for the API').env('XLB_TOKEN_FILE'))
    .option('--json', 'print JSON');

export function addApiCommands(program: Command): void {
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
    addCheckFlags(
      vip
        .command('add <protocol> <address> <port>')
        .description('create or replace a VIP')
        .requiredOption('--forwarding <method>', orList(forwardingModes.keys()))
        .option('--affinity <kind>', 'flow or source-ip')
        .option('--no-conntrack', 'do not keep flows in the connection table')
        .option('--panic-threshold <share>', '0..1')
        .option('--health-check <type>', orList(checkTypes.keys())),
    ),
  ).action(async (protocol: string, address: string, port: string, o: ClientOptions & Record<string, string | boolean | undefined>) => {
    const healthCheck = checkFromFlags(o);
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
}
