/** Option and argument parsers: a bad value is a CliError naming the option. */
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

export function decimal(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) throw new CliError(`${option}: not a decimal number like 0.5: ${JSON.stringify(text)}`);
  return Number(text);
}

/** A VIP's port argument, checked before it goes into a URL. */
export function portArgument(text: string): string {
  if (!portParamSchema.safeParse(text).success)
    throw new CliError(`port: not a port (0..65535 in decimal digits): ${JSON.stringify(text)}`);
  return text;
}
