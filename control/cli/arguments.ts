/** Option and argument parsers: a bad value is a CliError naming the option. */
import { z } from 'zod';
import { parseWholeNumber } from '../whole-number.js';
import { portParamSchema } from '../state/schema.js';
import { CliError } from './errors.js';

/** Registry names for a help text: "a, b or c". */
export const orList = (names: Iterable<string>) => [...names].join(', ').replace(/, ([^,]*)$/, ' or $1');

export function wholeNumber(option: string, text: string): number;
export function wholeNumber(option: string, text: string | undefined): number | undefined;
export function wholeNumber(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const number = parseWholeNumber(text);
  if (number === null) throw new CliError(`${option}: not a whole number in decimal digits: ${JSON.stringify(text)}`);
  return number;
}

export function decimal(option: string, text: string): number;
export function decimal(option: string, text: string | undefined): number | undefined;
export function decimal(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) throw new CliError(`${option}: not a decimal number like 0.5: ${JSON.stringify(text)}`);
  return Number(text);
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000 } as const;
const DURATION = /^(0|[1-9][0-9]*)(ms|s|m)?$/;

/** A duration in milliseconds from `500ms`, `2s`, `1m` or a bare number of milliseconds. */
export function duration(option: string, text: string): number;
export function duration(option: string, text: string | undefined): number | undefined;
export function duration(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = DURATION.exec(text);
  if (!match) throw new CliError(`${option}: not a duration like 500ms, 2s, 1m or a whole number of milliseconds: ${JSON.stringify(text)}`);
  return Number(match[1]) * DURATION_UNITS_MS[(match[2] ?? 'ms') as keyof typeof DURATION_UNITS_MS];
}

/** A duration in milliseconds as help shows it: `2s` for 2000, `1500ms` for 1500. */
export const durationText = (ms: number) =>
  ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;

/** The default a zod schema applies when the value is left out, or undefined if it has none. */
export function schemaDefault(schema: z.ZodType): unknown {
  return (z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { default?: unknown }).default;
}

/** `help` ending in the schema's default, as `(default 0.5)`, shown through `show` (e.g. a duration's form). */
export function withDefault(help: string, schema: z.ZodType, show: (value: unknown) => string = String): string {
  const value = schemaDefault(schema);
  return value === undefined ? help : `${help} (default ${show(value)})`;
}

/** A VIP's port argument, checked before it goes into a URL. */
export function portArgument(text: string): string {
  if (!portParamSchema.safeParse(text).success)
    throw new CliError(`port: not a port (0..65535 in decimal digits): ${JSON.stringify(text)}`);
  return text;
}
