/** What a health-check type is: one entry of the registry (registry.ts). */
import { z } from 'zod';
import { PROBE_PORT_MAX, PROBE_PORT_MIN } from '../dataplane/codec.js';
import { familyOf } from '../net/address.js';
import { egressFilterAhead } from './egress-ahead.js';
import { probeRouteProblem } from './probe-route.js';
import { passedProbeProgram, probeKey, type ProbeSentAt, unstampedReason } from './probe-stamp.js';

/** Options every probing check takes, with their defaults (the schema and the CLI help show them from here). */
export const checkTimingShape = {
  intervalMs: z.number().int().min(100).max(3_600_000).default(2000).describe('Between checks'),
  timeoutMs: z.number().int().min(50).max(60_000).default(1000).describe('Per check'),
  rise: z.number().int().min(1).max(100).default(2).describe('Successes to become healthy'),
  fall: z.number().int().min(1).max(100).default(3).describe('Failures to become unhealthy'),
};

/** How a probe reaches its backend. */
export const checkViaSchema = z
  .enum(['vip', 'direct'])
  .describe("vip: to the VIP address, forwarded to the backend as a client's packet is; direct: to the backend's own address");
export type CheckVia = z.infer<typeof checkViaSchema>;

/** Fields every check takes, whatever its type. */
export const checkCommonShape = {
  port: z.number().int().min(1).max(65535).optional().describe('Port to check; default the VIP port'),
  via: checkViaSchema.default('vip'),
  ...checkTimingShape,
};

/** One backend's check with every default applied; the type's own options beside the common ones. */
export interface CheckSpec {
  type: string;
  /** Where the probe is sent: the backend's address (direct) or the VIP's (via vip). */
  address: string;
  port: number;
  via: CheckVia;
  /** via vip: the backend the probe reaches and the VIP's forwarding mode, for reasons. */
  backend: string;
  forwarding: string;
  /** The local port a probe binds (via vip: it names the backend to the tc program xlb_probe). */
  localPort?: number | undefined;
  /**
   * via vip: the LB's source address the probe binds, the one the balancer knows its own
   * looped probes by; null when the LB has none of the VIP's family; unset: the kernel picks.
   */
  localAddress?: string | null | undefined;
  /** via vip: the XDP interface, whose egress sends probes; a failure checks the route to the VIP leaves by it. */
  probeInterface?: string | undefined;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  [option: string]: unknown;
}

/** Why a check's options cannot go together (the option to name and why), or null: for rules across a type's options. */
type OptionsProblem = (check: Record<string, unknown>) => { option: string; message: string } | null;

/**
 * One probe: resolves to null on success or a reason on failure; rejects with
 * ProbeUnsent when the LB could not send it (its problem, not the backend's). With
 * `sentAt`, a via-vip success counts only if xlb_probe sent the probe on.
 */
type Probe = (spec: CheckSpec, sentAt?: ProbeSentAt) => Promise<string | null>;

/** A via-vip probe the LB could not send, for a cause of its own (its message): held, not counted against the backend. */
export class ProbeUnsent extends Error {
  override name = 'ProbeUnsent';
}

/** A probe's local port that another process on the LB holds: the probe never left. */
export class ProbePortBusy extends ProbeUnsent {
  override name = 'ProbePortBusy';
  constructor(
    readonly port: number,
    readonly code: string,
  ) {
    super(`local port ${port} is held by another process on the LB (${code})`);
  }
}

/** What a probe's socket code settles with: a reason as the probe's, or why it was not sent. */
export type ProbeOutcome = string | null | ProbeUnsent;

export interface CheckType {
  name: string;
  /** One phrase for the schema and the CLI help. */
  description: string;
  /** The type's own options, each with its default (schema defaults). */
  options: z.ZodRawShape;
  optionsProblem?: OptionsProblem;
  /** The IP protocol its probes send (xlb_probe keys them by it); none for a type that never probes. */
  protocol?: ProbeProtocol;
  /** Null for a type that never probes: its backends count as up. */
  probe: Probe | null;
}

type ProbeProtocol = 'tcp' | 'udp';

/** A probe's failure with the path it took: "no answer through ipip to 198.18.0.11", "direct to 198.18.0.12: …". */
export function pathReason(spec: Pick<CheckSpec, 'via' | 'forwarding' | 'backend'>, reason: string): string {
  return spec.via === 'vip' ? `${reason} through ${spec.forwarding} to ${spec.backend}` : `direct to ${spec.backend}: ${reason}`;
}

/** Why a via-vip probe cannot be sent, or null. */
function unsendable(spec: CheckSpec): string | null {
  if (spec.via === 'vip' && spec.localPort === undefined)
    return `more checks to ${spec.address} port ${spec.port} than probe ports (${PROBE_PORT_MIN}-${PROBE_PORT_MAX})`;
  if (spec.via === 'vip' && spec.localAddress === null)
    return `the LB has no IPv${familyOf(spec.address)} source address (--source-v${familyOf(spec.address)} or one on the XDP interface) for the probe to bind`;
  return null;
}

/**
 * Whether a socket error says another socket holds the probe's local port: its bind
 * failed, or its connect found the 4-tuple taken (EADDRNOTAVAIL: a socket sharing the
 * port with SO_REUSEADDR connected to the same VIP and port first).
 */
const portTaken = (error: NodeJS.ErrnoException): boolean =>
  error.syscall === 'bind'
    ? error.code === 'EADDRINUSE' || error.code === 'EACCES'
    : error.syscall === 'connect' && error.code === 'EADDRNOTAVAIL';

/**
 * The reason of a socket error: ENETUNREACH on a via-vip probe names the missing route;
 * a via-vip probe's local port taken (the allocator's to move) is ProbePortBusy, its
 * source failing to bind (an address the host lost: the source follows the interface)
 * ProbeUnsent.
 */
export function socketErrorReason(spec: CheckSpec, what: string, error: NodeJS.ErrnoException): string | ProbeUnsent {
  if (spec.via === 'vip' && spec.localPort !== undefined && portTaken(error))
    return new ProbePortBusy(spec.localPort, error.code ?? 'EADDRINUSE');
  if (spec.via === 'vip' && error.code === 'ENETUNREACH')
    return `no route from the LB to ${spec.address}: via vip needs one out of the XDP interface`;
  if (spec.via === 'vip' && error.code === 'EHOSTUNREACH')
    return (
      `host unreachable, or the probe's hop limit ran out at a backend that forwards packets to ${spec.address} ` +
      'instead of taking them (is the VIP on its lo?)'
    );
  if (spec.via === 'vip' && error.code === 'EADDRNOTAVAIL')
    return new ProbeUnsent(`the LB's source address ${spec.localAddress} is not on this host: a via-vip probe binds it`);
  if (error.code === 'ECONNREFUSED') return 'connection refused';
  return `${what}: ${error.code ?? error.message}`;
}

/**
 * A finished probe's result: a failure names its path, led by what keeps probes from
 * xlb_probe when that is known (an egress filter ahead of it, egress-ahead.ts, or the
 * route); a success that did not pass xlb_probe (`stamped` false) fails saying so
 * (probe-stamp.ts).
 */
export function probeResult(
  spec: Pick<CheckSpec, 'via' | 'forwarding' | 'backend' | 'probeInterface'>,
  reason: string | null,
  stamped: boolean,
  route: string | null,
  filterAhead: string | null = null,
): string | null {
  if (reason === null)
    return stamped ? null : unstampedReason(spec.probeInterface ?? 'the XDP interface', spec.backend, filterAhead ?? route);
  if (filterAhead !== null) return `${filterAhead} (${pathReason(spec, reason)})`;
  return route === null ? pathReason(spec, reason) : `${route}: the probe cannot pass the probe program (${pathReason(spec, reason)})`;
}

/**
 * A check type whose probe sees its own options typed, as `options` resolves them;
 * its results are probeResult's: a via-vip probe's route is asked when it failed or
 * was answered without passing xlb_probe (probe-route.ts).
 */
export function defineCheckType<Shape extends z.ZodRawShape>(
  entry: {
    name: string;
    description: string;
    options: Shape;
    optionsProblem?: OptionsProblem;
  } & (
    | { protocol: ProbeProtocol; probe: (spec: CheckSpec & z.output<z.ZodObject<Shape>>) => Promise<ProbeOutcome> }
    | { protocol?: never; probe: null }
  ),
): CheckType {
  const probe = entry.probe === null ? null : probeOf(entry.probe as (spec: CheckSpec) => Promise<ProbeOutcome>, entry.protocol);
  return { ...entry, probe };
}

/** A check type's probe: `run` sending `protocol`, its outcome made a result by probeResult. */
function probeOf(run: (spec: CheckSpec) => Promise<ProbeOutcome>, protocol: ProbeProtocol): Probe {
  return async (spec, sentAt) => {
    const unsent = unsendable(spec);
    if (unsent !== null) return pathReason(spec, unsent);
    const startedNs = process.hrtime.bigint();
    const reason = await run(spec);
    if (reason instanceof ProbeUnsent) throw reason;
    const key = spec.via === 'vip' ? probeKey(spec, protocol) : null;
    const stamped = reason !== null || !sentAt || key === null || passedProbeProgram(startedNs, sentAt(key));
    if (reason === null && stamped) return null;
    const filterAhead = spec.via === 'vip' ? egressFilterAhead() : null;
    const route =
      spec.via === 'vip' && spec.probeInterface !== undefined && filterAhead === null
        ? await probeRouteProblem(
            { address: spec.address, source: spec.localAddress ?? undefined, protocol, sport: spec.localPort, dport: spec.port },
            spec.probeInterface,
          )
        : null;
    return probeResult(spec, reason, stamped, route, filterAhead);
  };
}
