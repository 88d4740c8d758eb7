/**
 * What `xlb trace` and /v1/trace take and answer: a flow (protocol and two endpoints)
 * or a raw frame in, what the balancer's code did with it out.
 */
import { z } from 'zod';
import { canonicalAddress, familyOf } from '../net/address.js';
import { FLOW_STATES, OUTCOMES } from '../dataplane/codec.js';
import { healthSchema } from '../checks/health.js';
import { backendSpecSchema } from '../state/schema.js';

/** BPF_PROG_TEST_RUN runs an XDP program on an Ethernet header at least, and on a page less its head- and tailroom at most. */
const MIN_FRAME_BYTES = 14;
export const MAX_FRAME_BYTES = 3520;
/** Packets one POST /v1/trace traces. */
export const MAX_TRACE_PACKETS = 1000;
/** JSON around one packet at most: `{"frame":"…"},` with room for whitespace. */
const PACKET_JSON_BYTES = 64;
/** POST /v1/trace's body limit: MAX_TRACE_PACKETS frames of the largest size, in hex, each with its JSON around it (6.8 MiB). */
export const TRACE_BODY_LIMIT = MAX_TRACE_PACKETS * (2 * MAX_FRAME_BYTES + PACKET_JSON_BYTES) + 1024;

export interface Endpoint {
  address: string;
  /** null for ICMP, which has no ports. */
  port: number | null;
}

/** "ADDRESS:PORT", "[IPV6]:PORT", or for ICMP a bare address; the reason it is none, or the endpoint. */
export function parseEndpoint(text: string, withPort: boolean): Endpoint | string {
  const match = withPort ? /^(?:\[([^\]]+)\]|([^:[\]]+)):(0|[1-9][0-9]{0,4})$/.exec(text) : /^\[?([^\]]+?)\]?()$/.exec(text);
  const address = match?.[1] ?? match?.[2];
  if (!match || address === undefined) {
    return withPort ? 'expected ADDRESS:PORT or [IPV6]:PORT' : 'expected an address (ICMP has no ports)';
  }
  const port = withPort ? Number(match[3]) : null;
  if (port !== null && port > 65535) return `port ${port} is over 65535`;
  try {
    return { address: canonicalAddress(address), port };
  } catch {
    return `not an IPv4 or IPv6 address: ${JSON.stringify(address)}`;
  }
}

const endpointText = z.string().max(64);

const flowFields = {
  protocol: z.enum(['tcp', 'udp', 'icmp']).describe('tcp and udp: a SYN or a datagram; icmp: an echo request').meta({ example: 'tcp' }),
  source: endpointText.describe('The client: ADDRESS:PORT, [IPV6]:PORT, or an address for icmp').meta({ example: '203.0.113.7:41000' }),
  destination: endpointText.describe('The VIP (or any address): as source').meta({ example: '198.51.100.10:80' }),
};

/** The flow of a protocol and two endpoint texts, or z.NEVER with an issue naming each field at fault. */
function toFlow(flow: { protocol: 'tcp' | 'udp' | 'icmp'; source: string; destination: string }, ctx: z.RefinementCtx) {
  const withPort = flow.protocol !== 'icmp';
  const source = parseEndpoint(flow.source, withPort);
  const destination = parseEndpoint(flow.destination, withPort);
  if (typeof source === 'string') ctx.addIssue({ code: 'custom', path: ['source'], message: source });
  if (typeof destination === 'string') ctx.addIssue({ code: 'custom', path: ['destination'], message: destination });
  if (typeof source === 'string' || typeof destination === 'string') return z.NEVER;
  if (familyOf(source.address) !== familyOf(destination.address)) {
    ctx.addIssue({ code: 'custom', path: ['destination'], message: 'source and destination must both be IPv4 or both IPv6' });
    return z.NEVER;
  }
  return { protocol: flow.protocol, source, destination };
}

export const flowSchema = z.object(flowFields).transform(toFlow);
export type Flow = z.output<typeof flowSchema>;

const frameText = z
  .string()
  .regex(/^([0-9a-fA-F]{2})+$/, 'hex digits, two per byte')
  .min(MIN_FRAME_BYTES * 2, `at least ${MIN_FRAME_BYTES} bytes (an Ethernet header)`)
  .max(MAX_FRAME_BYTES * 2, `at most ${MAX_FRAME_BYTES} bytes`)
  .describe('A whole Ethernet frame in hex, as the interface would receive it: instead of protocol, source and destination')
  .meta({ example: '020000000002020000000001080045000028' });

/** A frame, or a flow: one object, so that a refusal names the field at fault. */
export const tracePacketSchema = z
  .object({
    frame: frameText.optional(),
    protocol: flowFields.protocol.optional(),
    source: flowFields.source.optional(),
    destination: flowFields.destination.optional(),
  })
  .transform((packet, ctx): { frame: string } | Flow => {
    const { frame, protocol, source, destination } = packet;
    if (frame !== undefined) {
      if (protocol ?? source ?? destination)
        ctx.addIssue({ code: 'custom', path: ['frame'], message: 'a frame, or protocol, source and destination: not both' });
      return { frame };
    }
    for (const [field, value] of Object.entries({ protocol, source, destination })) {
      if (value === undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'required (or give frame)' });
    }
    if (protocol === undefined || source === undefined || destination === undefined) return z.NEVER;
    return toFlow({ protocol, source, destination }, ctx);
  });
export type TracePacket = z.output<typeof tracePacketSchema>;

export const traceBodySchema = z.object({
  packets: z.array(tracePacketSchema).min(1).max(MAX_TRACE_PACKETS).describe('Flows or frames, traced in order'),
});

const backendSchema = z.object({
  id: z.number().int().describe('The data-plane id of this (VIP, backend)'),
  address: z.string().nullable().describe('null: the id is no backend of the VIP in the desired state'),
  weight: z.number().nullable(),
  state: backendSpecSchema.shape.state.unwrap().nullable(),
  health: healthSchema.nullable(),
  healthReason: z.string().nullable(),
  inRing: z.boolean().nullable().describe('Takes new flows: holds slots of the ring'),
  slots: z.number().int().nullable(),
});

export const traceSchema = z.object({
  verdict: z.enum(['aborted', 'drop', 'pass', 'tx', 'redirect']).describe('What XDP does with the packet'),
  outcome: z.enum(OUTCOMES).describe('The counter the packet ends in, as in /v1/stats outcomes'),
  vip: z
    .object({ protocol: z.string(), address: z.string(), port: z.number(), forwarding: z.string(), conntrack: z.boolean() })
    .nullable()
    .describe('The VIP the packet matched; null: none (see outcome)'),
  table: z
    .object({
      result: z.enum(['hit', 'miss', 'stale']).describe('stale: an entry names the flow, but its backend no longer serves it: re-hashed'),
      backend: backendSchema.nullable().describe('The backend the entry names (hit, stale)'),
      state: z
        .enum(FLOW_STATES)
        .optional()
        .describe(
          "The entry's state (hit, stale; absent on a miss): a new flow may take a new or closing entry, never one established and active",
        ),
    })
    .nullable()
    .describe('The connection table; null: not read (no VIP, conntrack off, or the packet stopped before)'),
  ring: z
    .object({
      hash: z.number().int().describe('The flow hash'),
      slot: z.number().int().describe('hash % M'),
      backend: backendSchema.nullable().describe('The backend in that slot; null: the VIP has no ring'),
    })
    .nullable()
    .describe('The Maglev ring: on a miss where the flow goes, on a hit where it would go if the table lost it; null: not read'),
  backend: backendSchema.nullable().describe('The backend the packet goes to'),
  output: z
    .object({
      frame: z.string().describe('The frame sent, in hex'),
      ethernet: z.object({ source: z.string(), destination: z.string() }),
      outer: z
        .object({ source: z.string(), destination: z.string(), protocol: z.number().int().describe('IP protocol or next header') })
        .nullable()
        .describe('ipip: the pushed header; null otherwise'),
    })
    .nullable()
    .describe('What the balancer transmits (verdict tx); null otherwise'),
});
export type TraceView = z.infer<typeof traceSchema>;
export type TraceBackend = z.infer<typeof backendSchema>;
