/** What a health-check type is: one entry of the registry (registry.ts). */
import { z } from 'zod';

/** Options every probing check takes, with their defaults (the schema and the CLI help show them from here). */
export const checkTimingShape = {
  intervalMs: z.number().int().min(100).max(3_600_000).default(2000).describe('Between checks'),
  timeoutMs: z.number().int().min(50).max(60_000).default(1000).describe('Per check'),
  rise: z.number().int().min(1).max(100).default(2).describe('Successes to become healthy'),
  fall: z.number().int().min(1).max(100).default(3).describe('Failures to become unhealthy'),
};

/** Fields every check takes, whatever its type. */
export const checkCommonShape = {
  port: z.number().int().min(1).max(65535).optional().describe('Port to check; default the VIP port'),
  ...checkTimingShape,
};

/** One backend's check with every default applied; the type's own options beside the common ones. */
export interface CheckSpec {
  type: string;
  address: string;
  port: number;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** The source port the probe binds: checks through the VIP are named by it. */
  localPort?: number | undefined;
  [option: string]: unknown;
}

/** Why a check's options cannot go together (the option to name and why), or null: for rules across a type's options. */
type OptionsProblem = (check: Record<string, unknown>) => { option: string; message: string } | null;

/** One probe: resolves to null on success or a reason on failure. */
type Probe = (spec: CheckSpec) => Promise<string | null>;

export interface CheckType {
  name: string;
  /** One phrase for the schema and the CLI help. */
  description: string;
  /** The type's own options, each with its default (schema defaults). */
  options: z.ZodRawShape;
  optionsProblem?: OptionsProblem;
  /** Null for a type that never probes: its backends count as up. */
  probe: Probe | null;
}

/** A check type whose probe sees its own options typed, as `options` resolves them. */
export function defineCheckType<Shape extends z.ZodRawShape>(entry: {
  name: string;
  description: string;
  options: Shape;
  optionsProblem?: OptionsProblem;
  probe: ((spec: CheckSpec & z.output<z.ZodObject<Shape>>) => Promise<string | null>) | null;
}): CheckType {
  return entry as CheckType;
}
