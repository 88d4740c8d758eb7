/** The verbs that talk to a daemon's API: ready, status, vip, backend, stats. */
import { type Command, Option } from 'commander';
import { checkTypes } from '../checks/registry.js';
import type { StatsView, VipView } from '../controller/views.js';
import { resolveServeOptions } from '../daemon/options.js';
import { forwardingModes } from '../forwarding/registry.js';
import { vipSpecSchema } from '../state/schema.js';
import { decimal, duration, orList, portArgument, withDefault } from './arguments.js';
import { apiClient, call, type ClientOptions, print, withClient } from './api-call.js';
import { addBackendCommands } from './backend-commands.js';
import { addCheckFlags, checkFromFlags } from './check-flags.js';
import { vipPath } from './client.js';
import { CliError, fail } from './errors.js';
import { table } from './format.js';
import { statsTable, vipArgumentsText, vipTable } from './tables.js';

const { affinity, conntrack, panicThreshold, healthCheck } = vipSpecSchema.shape;

export function addApiCommands(program: Command): void {
  program
    .command('ready')
    .description('wait until the daemon of this configuration answers /readyz with 200')
    .requiredOption('--config <file>', 'the xlb serve YAML')
    .option('--timeout <duration>', 'give up after this long: 500ms, 2s, 1m or milliseconds', '60s')
    .action(async (o: { config: string; timeout: string }) => {
      const options = resolveServeOptions({}, o.config);
      const api =
        options.api.kind === 'unix'
          ? `unix:${options.api.path}`
          : `${options.api.host.includes(':') ? `[${options.api.host}]` : options.api.host}:${options.api.port}`;
      const deadline = Date.now() + duration('--timeout', o.timeout);
      const client = apiClient(api, options.tokenFile);
      for (;;) {
        const status = await client.request('GET', '/readyz').then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new CliError(`not ready after ${o.timeout} (last status ${status || 'unreachable'})`);
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
        .description('create or replace a VIP: what is not given takes its default')
        .requiredOption('--forwarding <method>', `${orList(forwardingModes.keys())} (required)`)
        .addOption(new Option('--affinity <kind>', withDefault(affinity.description ?? '', affinity)).choices(affinity.unwrap().options))
        .option(
          '--no-conntrack',
          withDefault('keep no flows in the connection table; conntrack', conntrack, (on) => (on ? 'on' : 'off')),
        )
        .option('--panic-threshold <share>', withDefault(`0..1: ${panicThreshold.description ?? ''}`, panicThreshold))
        .option(
          '--health-check <type>',
          withDefault(orList(checkTypes.keys()), healthCheck, (check) => (check as { type: string }).type),
        ),
    ),
  ).action(async (protocol: string, address: string, port: string, o: ClientOptions & Record<string, string | boolean | undefined>) => {
    const body = {
      forwarding: o.forwarding,
      affinity: o.affinity,
      conntrack: o.conntrack,
      panicThreshold: decimal('--panic-threshold', o.panicThreshold as string | undefined),
      healthCheck: checkFromFlags(o),
    };
    const result = await call<VipView>(o, 'PUT', vipPath(protocol, address, portArgument(port)), body);
    print(o, result, () => vipTable([result]));
  });
  withClient(vip.command('rm <protocol> <address> <port>').description('remove a VIP')).action(
    async (protocol: string, address: string, port: string, o: ClientOptions) => {
      await call(o, 'DELETE', vipPath(protocol, address, portArgument(port)));
      print(o, { removed: true }, () => `removed ${vipArgumentsText(protocol, address, port)}`);
    },
  );
  withClient(vip.command('ls').description('list VIPs')).action(async (o: ClientOptions) => {
    const { vips } = await call<{ vips: VipView[] }>(o, 'GET', '/v1/vips');
    print(o, { vips }, () => vipTable(vips));
  });

  addBackendCommands(program);

  withClient(
    program
      .command('stats')
      .description('packets, bytes and rates per VIP and backend, and packets by outcome (drops and forwards)')
      .option('--watch', 'refresh every second'),
  ).action(async (o: ClientOptions & { watch?: boolean }) => {
    const show = async () => {
      const stats = await call<StatsView>(o, 'GET', '/v1/stats');
      if (o.watch && !o.json && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      print(o, stats, () => statsTable(stats));
    };
    await show();
    if (!o.watch) return;
    await new Promise<never>(() => setInterval(() => void show().catch((e) => fail(e)), 1000));
  });
}
