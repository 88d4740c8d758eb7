/**
 * What the controller shows: its answers as zod schemas (the API validates and
 * documents them, the types are inferred from them), the events it publishes, and a
 * VIP's view built from its plan.
 */
import { z } from 'zod';
import { type CheckVia, checkViaSchema } from '../checks/check-type.js';
import { type Health, healthSchema } from '../checks/health.js';
import { checkVia } from '../checks/registry.js';
import { xdpModeSchema } from '../dataplane/xdp-mode.js';
import { formatMac } from '../net/address.js';
import { floodViewSchema } from './flood-state.js';
import type { VipPlan } from '../reconciler/plan.js';
import { backendSpecSchema, healthCheckSchema, protocolSchema, type StoredBackend, type VipKey, vipSpecSchema } from '../state/schema.js';

const backendViewSchema = z.object({
  address: z.string(),
  weight: z.number(),
  state: backendSpecSchema.shape.state.unwrap(),
  health: healthSchema,
  healthReason: z.string().nullable().describe('Why the last check failed, or why no probe could be sent yet'),
  via: z.enum([...checkViaSchema.options, 'none']).describe("The path its check takes; none: the VIP's check does not probe"),
  lastCheckAt: z.string().nullable().describe('When the last check finished (ISO 8601), or null before the first'),
  lastCheckMs: z.number().nullable().describe('How long the last check took (ms), or null before the first'),
  lastFailureAt: z.string().nullable().describe('When a check last failed (ISO 8601), kept after the backend recovers; null if none has'),
  lastFailureReason: z.string().nullable().describe('Why that check failed'),
  inRing: z.boolean().describe('Takes new flows now: holds at least one slot of the ring'),
  slots: z.number().int().describe('Slots of the Maglev ring it holds (of M)'),
  reason: z.string().nullable().describe('Why it is not in the ring'),
  mac: z.string().nullable().describe('Resolved next-hop MAC'),
});

export const vipViewSchema = z.object({
  protocol: protocolSchema,
  address: z.string(),
  port: z.number(),
  forwarding: vipSpecSchema.shape.forwarding,
  affinity: vipSpecSchema.shape.affinity.unwrap(),
  conntrack: z.boolean(),
  panicThreshold: z.number(),
  healthCheck: healthCheckSchema,
  panic: z.boolean().describe('Healthy share under panicThreshold: every non-drained backend serves'),
  ringBackends: z.number(),
  backends: z.array(backendViewSchema),
});

export const vipListSchema = z.object({ vips: z.array(vipViewSchema) });

export const statusSchema = z.object({
  version: z.string(),
  interface: z.string(),
  xdpMode: xdpModeSchema,
  uptimeSeconds: z.number(),
  attached: z.boolean().describe('The balancer is the XDP program on the interface'),
  attachReason: z
    .string()
    .nullable()
    .describe(
      'Why it is not attached (interface gone, another program); while attached, an egress filter that runs before xlb_probe; or null',
    ),
  ready: z.boolean().describe('Attached and the desired state applied: /readyz answers 200'),
  warnings: z
    .array(z.string())
    .describe(
      'About the host, found at start (e.g. a veth peer without XDP), and an egress filter the link watch finds running before xlb_probe',
    ),
  conflicts: z
    .array(z.object({ vip: z.string(), backend: z.string().nullable().describe('null: the VIP itself'), problem: z.string() }))
    .describe(
      "Stored VIPs and backends the host's addresses now rule out (an address added to the host after they were accepted): " +
        'applied as they are, new ones are 409',
    ),
  errors: z
    .array(z.object({ component: z.string(), count: z.number(), lastMessage: z.string(), lastAt: z.string() }))
    .describe('Failures the daemon caught and went on from, by component'),
  counts: z.object({ vips: z.number(), backends: z.number(), backendsInRing: z.number(), backendsHealthy: z.number() }),
});

const flowClassesSchema = z.object({ new: z.number(), established: z.number(), closing: z.number() });

const trafficSchema = z.object({
  packets: z.number(),
  bytes: z.number(),
  packetsPerSecond: z.number().describe('Over `window`'),
  bytesPerSecond: z.number().describe('Over `window`'),
});

export const statsSchema = z.object({
  at: z.string().describe('When the totals were read'),
  window: z
    .object({ start: z.string(), end: z.string() })
    .nullable()
    .describe('The fixed window of one second the rates are over, the same for every reader; null: no window yet, rates 0'),
  vips: z.array(
    trafficSchema.extend({
      protocol: protocolSchema,
      address: z.string(),
      port: z.number(),
      flowHits: z.number(),
      flowMisses: z.number(),
      flows: z.number().describe('Flows of its backends in the connection table (estimated from a sample in a large table)'),
      backends: z.array(
        trafficSchema.extend({
          address: z.string(),
          flows: z.number().describe('Flows pinned to it in the connection table: a drained backend is empty at 0'),
        }),
      ),
    }),
  ),
  outcomes: z.record(z.string(), z.object({ packets: z.number(), bytes: z.number() })),
  flowTable: z
    .object({
      slots: z.number(),
      flows: z.number(),
      states: flowClassesSchema.describe('Entries by state: new (one packet seen), established, closing (FIN or RST seen)'),
      evictions: flowClassesSchema.describe(
        "New flows of the VIPs recorded over another flow's entry, by that entry's state, while the daemon runs (only grows)",
      ),
      unrecorded: z
        .number()
        .describe(
          "Packets of the VIPs' new flows that found no entry and no way to take (bucket and neighbour full of active " +
            'established flows; every packet of such a flow counts), while the daemon runs (only grows)',
        ),
    })
    .describe('The connection table: flows it has room for and holds'),
  flood: floodViewSchema,
});

export type BackendView = z.infer<typeof backendViewSchema>;
export type VipView = z.infer<typeof vipViewSchema>;
export type StatusView = z.infer<typeof statusSchema>;
export type TrafficView = z.infer<typeof trafficSchema>;
export type StatsView = z.infer<typeof statsSchema>;

/**
 * Who made a change: the client's address ('unix' on the unix socket) and its token's
 * fingerprint (the first 12 hex digits of its SHA-256; null without a token).
 */
export interface ClientIdentity {
  peer: string;
  token: string | null;
}

/** What an API write changed, and who made it. */
export interface ConfigChange {
  action: 'vip.put' | 'vip.delete' | 'backend.put' | 'backend.patch' | 'backend.delete';
  vip: VipKey;
  backend?: string;
  /** null: made in the daemon's process, not through the API. */
  by: ClientIdentity | null;
}

/** A record's fields as the event log shows them (a VIP's backends by address). */
export type ConfigFields = Record<string, unknown>;

/** An event the daemon keeps in its history: numbered from 1 at each start, with its time (ISO 8601). */
type Recorded<E> = E & { id: number; at: string };

export type XlbEvent =
  | Recorded<
      {
        type: 'config';
        /** The fields that changed, before and after; null: the record did not exist, or no longer does. */
        before: ConfigFields | null;
        after: ConfigFields | null;
      } & ConfigChange
    >
  | Recorded<{ type: 'config'; action: 'sync'; revision: string }>
  | Recorded<{
      type: 'health';
      vip: VipKey;
      backend: string;
      via: CheckVia;
      from: Health;
      to: Health;
      reason: string | null;
      latencyMs: number;
    }>
  | Recorded<{
      type: 'link';
      iface: string;
      attached: boolean;
      reason: string | null;
      /** The balancer's sources, when one followed the interface to a new address (or to none). */
      sources?: { v4: string | null; v6: string | null } | undefined;
    }>
  | Recorded<{
      type: 'start';
      version: string;
      iface: string;
      /** Where the desired state was restored from. */
      store: string;
      vips: number;
      backends: number;
      /** Pinned maps a previous daemon left that this one took over, and the ones it made. */
      pins: { adopted: string[]; created: string[] };
    }>
  | Recorded<{ type: 'shutdown'; reason: string }>
  | Recorded<{
      type: 'flood';
      /** true: a flood started; false: it ended. */
      active: boolean;
      threshold: number;
      /** Each CPU's new flows per second in the window that started or ended it. */
      newFlowsPerSecond: number[];
      peakPerSecond: number;
      since: string;
      /** From its first window over the threshold to the start of the calm that ended it (to now at the start), and its new flows. */
      durationSeconds: number;
      newFlows: number;
    }>
  | ({ type: 'stats' } & StatsView);

export type RecordedEvent = Exclude<XlbEvent, { type: 'stats' }>;
/** An event before the history numbers and times it. */
export type NewEvent = RecordedEvent extends infer E ? (E extends RecordedEvent ? Omit<E, 'id' | 'at'> : never) : never;

/**
 * The first message of a replay when events after `since` are missing from it:
 * 'evicted', older than the oldest kept; 'restarted', `since` is beyond the last id,
 * so it is an earlier daemon's (ids begin again at each start). `next` is the id the
 * replay goes on from.
 */
export interface EventGap {
  type: 'gap';
  since: number;
  next: number;
  reason: 'evicted' | 'restarted';
}

/** A backend's last check as the health monitor saw it. */
export interface LastCheck {
  reason: string | null;
  lastCheckedAt: number | null;
  lastLatencyMs: number | null;
  lastFailure: { at: number; reason: string } | null;
}

/** A VIP's settings and each backend's plan with its last check (undefined: the backend has none). */
export function vipView(plan: VipPlan, lastCheck: (backend: StoredBackend) => LastCheck | undefined): VipView {
  const { vip } = plan;
  return {
    protocol: vip.protocol,
    address: vip.address,
    port: vip.port,
    forwarding: vip.forwarding,
    affinity: vip.affinity,
    conntrack: vip.conntrack,
    panicThreshold: vip.panicThreshold,
    healthCheck: vip.healthCheck,
    panic: plan.panic,
    ringBackends: plan.backends.filter((b) => b.inRing).length,
    backends: plan.backends.map((b) => {
      const spec = vip.backends.find((s) => s.id === b.id)!;
      const check = lastCheck(spec);
      return {
        address: b.address,
        weight: spec.weight,
        state: spec.state,
        health: b.health,
        healthReason: check?.reason ?? null,
        via: checkVia(vip.healthCheck) ?? 'none',
        lastCheckAt: check?.lastCheckedAt == null ? null : new Date(check.lastCheckedAt).toISOString(),
        lastCheckMs: check?.lastLatencyMs ?? null,
        lastFailureAt: check?.lastFailure ? new Date(check.lastFailure.at).toISOString() : null,
        lastFailureReason: check?.lastFailure?.reason ?? null,
        inRing: b.inRing,
        slots: b.slots,
        reason: b.reason,
        mac: b.mac.some((x) => x) ? formatMac(b.mac) : null,
      };
    }),
  };
}
