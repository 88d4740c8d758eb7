/** `xlb trace`: where a flow (or a raw frame) goes, by the balancer's own code on the daemon's live maps. */
import type { Command } from 'commander';
import { flowSchema, type TraceBackend, tracePacketSchema, type TraceView } from '../trace/schema.js';
import { call, type ClientOptions, print, withClient } from './api-call.js';
import { CliError } from './errors.js';
import { table } from './format.js';
import { vipKeyText } from '../state/schema.js';

const backendText = (b: TraceBackend | null) => {
  if (!b) return '-';
  if (b.address === null) return `id ${b.id} (no backend of this VIP in the desired state)`;
  const ring = b.inRing ? `in ring (${b.slots} slots)` : 'not in ring';
  return `${b.address} (id ${b.id}): ${b.health}${b.healthReason ? ` (${b.healthReason})` : ''}, weight ${b.weight}, ${b.state}, ${ring}`;
};

/** The trace as FIELD VALUE lines. */
export function traceTable(t: TraceView): string {
  const rows: [string, string][] = [
    ['outcome', `${t.outcome} (${t.verdict})`],
    ['vip', t.vip ? `${vipKeyText(t.vip)} (${t.vip.forwarding}${t.vip.conntrack ? '' : ', no conntrack'})` : 'none'],
    [
      'table',
      t.table
        ? `${t.table.result}${t.table.state ? ` (${t.table.state})` : ''}${t.table.backend ? `: ${backendText(t.table.backend)}` : ''}`
        : 'not read',
    ],
    [
      'ring',
      t.ring ? `hash 0x${t.ring.hash.toString(16).padStart(8, '0')}, slot ${t.ring.slot}: ${backendText(t.ring.backend)}` : 'not read',
    ],
    ['backend', backendText(t.backend)],
  ];
  if (t.table?.result === 'hit' && t.ring?.backend && t.ring.backend.id !== t.table.backend?.id)
    rows.splice(4, 0, ['', 'the table keeps the flow on its backend; the ring now gives its slot to another']);
  if (t.output) {
    rows.push(['output', `${t.output.ethernet.source} > ${t.output.ethernet.destination}`]);
    if (t.output.outer)
      rows.push(['outer', `${t.output.outer.source} > ${t.output.outer.destination}, protocol ${t.output.outer.protocol}`]);
    rows.push(['frame', t.output.frame]);
  }
  return table(['FIELD', 'VALUE'], rows);
}

/**
 * The arguments (`source`, ...) or `--frame`, checked by the API's own schema before the
 * call: a refusal names the argument or flag and why, as the API would for its field.
 */
function checked(schema: typeof flowSchema | typeof tracePacketSchema, given: Record<string, string>, name = (field: string) => field) {
  const issue = schema.safeParse(given).error?.issues[0];
  if (issue) throw new CliError(`${name(String(issue.path[0]))}: ${issue.message}`);
}

export function addTraceCommand(program: Command): void {
  withClient(
    program
      .command('trace [protocol] [source] [destination]')
      .description(
        'where a flow goes and why: tcp|udp CLIENT:PORT VIP:PORT ([IPV6]:PORT), or icmp CLIENT VIP (an echo request); ' +
          'the balancer program runs on the live maps without changing them',
      )
      .option('--frame <hex>', 'trace this Ethernet frame (hex) instead: fragments, malformed packets, anything'),
  ).action(
    async (
      protocol: string | undefined,
      source: string | undefined,
      destination: string | undefined,
      o: ClientOptions & { frame?: string },
    ) => {
      let trace: TraceView;
      if (o.frame !== undefined) {
        if (protocol !== undefined) throw new CliError('give either --frame or PROTOCOL SOURCE DESTINATION, not both');
        checked(tracePacketSchema, { frame: o.frame }, () => '--frame');
        trace = (await call<{ traces: TraceView[] }>(o, 'POST', '/v1/trace', { packets: [{ frame: o.frame }] })).traces[0]!;
      } else {
        if (protocol === undefined || source === undefined || destination === undefined) {
          throw new CliError('trace needs PROTOCOL SOURCE DESTINATION (e.g. tcp 203.0.113.7:41000 198.51.100.10:80), or --frame HEX');
        }
        checked(flowSchema, { protocol, source, destination });
        trace = await call<TraceView>(o, 'GET', `/v1/trace?${new URLSearchParams({ protocol, source, destination }).toString()}`);
      }
      print(o, trace, () => traceTable(trace));
    },
  );
}
