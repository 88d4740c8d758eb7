/** `xlb backend add|set|drain|rm|ls`: a VIP's backends. */
import { type Command, Option } from 'commander';
import type { VipView } from '../controller/views.js';
import { backendSpecSchema } from '../state/schema.js';
import { portArgument, wholeNumber, withDefault } from './arguments.js';
import { call, type ClientOptions, print, withClient } from './api-call.js';
import { vipPath } from './client.js';
import { CliError } from './errors.js';
import { backendTable, vipArgumentsText } from './tables.js';

const backendArgs = '<protocol> <vip> <port> <backend>';
const { weight, state } = backendSpecSchema.shape;
const states = state.unwrap().options;

/** The backend's path, its port argument checked; `vip` names the VIP in messages. */
const target = (protocol: string, vipAddress: string, port: string, address: string) => ({
  path: vipPath(protocol, vipAddress, portArgument(port), address),
  vip: vipArgumentsText(protocol, vipAddress, port),
});

export function addBackendCommands(program: Command): void {
  const backend = program.command('backend').description("manage a VIP's backends");
  withClient(
    backend
      .command(`add ${backendArgs}`)
      .description('add a backend, or replace all its settings: what is not given takes its default')
      .option('--weight <n>', withDefault(weight.description ?? 'relative weight', weight))
      .addOption(new Option('--state <state>', withDefault(state.description ?? 'state', state)).choices(states)),
  ).action(
    async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions & { weight?: string; state?: string }) => {
      const body = { weight: wholeNumber('--weight', o.weight), state: o.state };
      const result = await call<VipView>(o, 'PUT', target(protocol, vipAddress, port, address).path, body);
      print(o, result, () => backendTable(result));
    },
  );
  withClient(
    backend
      .command(`set ${backendArgs}`)
      .description('change only the settings given of an existing backend')
      .option('--weight <n>', weight.description ?? 'relative weight')
      .addOption(new Option('--state <state>', state.description ?? 'state').choices(states)),
  ).action(
    async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions & { weight?: string; state?: string }) => {
      if (o.weight === undefined && o.state === undefined) throw new CliError('give --weight, --state or both');
      const body = { weight: wholeNumber('--weight', o.weight), state: o.state };
      const result = await call<VipView>(o, 'PATCH', target(protocol, vipAddress, port, address).path, body);
      print(o, result, () => backendTable(result));
    },
  );
  withClient(
    backend.command(`drain ${backendArgs}`).description('stop new flows to a backend; existing ones go on (set --state drain)'),
  ).action(async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions) => {
    const result = await call<VipView>(o, 'PATCH', target(protocol, vipAddress, port, address).path, { state: 'drain' });
    print(o, result, () => backendTable(result));
  });
  withClient(backend.command(`rm ${backendArgs}`).description('remove a backend')).action(
    async (protocol: string, vipAddress: string, port: string, address: string, o: ClientOptions) => {
      const { path, vip } = target(protocol, vipAddress, port, address);
      await call(o, 'DELETE', path);
      print(o, { removed: true }, () => `removed ${address} from ${vip}`);
    },
  );
  withClient(backend.command('ls <protocol> <vip> <port>').description("list a VIP's backends")).action(
    async (protocol: string, vipAddress: string, port: string, o: ClientOptions) => {
      const result = await call<VipView>(o, 'GET', vipPath(protocol, vipAddress, portArgument(port)));
      print(o, { backends: result.backends }, () => backendTable(result));
    },
  );
}
