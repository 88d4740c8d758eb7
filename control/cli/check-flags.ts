/**
 * The --hc-* flags of `vip add`, made from the check schemas: one per common check
 * field and per option of every registered check type, named, described and parsed
 * from the option's zod schema. A field in milliseconds (`intervalMs`) is a duration
 * flag without the unit (`--hc-interval 2s`).
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { checkCommonShape } from '../checks/check-type.js';
import { checkTypes } from '../checks/registry.js';
import { decimal, duration, durationText, orList, wholeNumber } from './arguments.js';
import { CliError } from './errors.js';

/** What the CLI reads of an option's schema. */
interface OptionJson {
  type?: string;
  enum?: unknown[];
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

const optionJson = (option: z.ZodType) => z.toJSONSchema(option, { io: 'input', unrepresentable: 'any' }) as OptionJson;
const isDuration = (key: string) => key.endsWith('Ms');
const flagOf = (key: string) => `--hc-${(isDuration(key) ? key.slice(0, -2) : key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
/** The property commander stores a --hc-<key> flag under. */
const propertyOf = (key: string) =>
  flagOf(key)
    .slice(2)
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** `value` if the schema's bounds allow it, else a CliError naming the flag and the bound (as `show` writes it). */
function inBounds(flag: string, json: OptionJson, text: string, value: number, show: (n: number) => string = String): number {
  if (json.minimum !== undefined && value < json.minimum) throw new CliError(`${flag}: at least ${show(json.minimum)}, not ${text}`);
  if (json.maximum !== undefined && value > json.maximum) throw new CliError(`${flag}: at most ${show(json.maximum)}, not ${text}`);
  return value;
}

/** The option's value from its flag's text: whole numbers and decimals as numbers within the schema's bounds, an enum's values checked. */
function parseOption(key: string, option: z.ZodType, text: string): unknown {
  const flag = flagOf(key);
  const json = optionJson(option);
  if (isDuration(key)) return inBounds(flag, json, text, duration(flag, text), durationText);
  if (json.enum) {
    const values = json.enum.map(String);
    if (!values.includes(text)) throw new CliError(`${flag}: one of ${orList(values)}, not ${JSON.stringify(text)}`);
    return text;
  }
  if (json.type === 'integer') return inBounds(flag, json, text, wholeNumber(flag, text));
  if (json.type === 'number') return inBounds(flag, json, text, decimal(flag, text));
  if (json.type === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new CliError(`${flag}: true or false, not ${JSON.stringify(text)}`);
    return text === 'true';
  }
  return text;
}

function helpOf(key: string, option: z.ZodType): { argument: string; help: string } {
  const json = optionJson(option);
  const shown = json.default === undefined ? undefined : isDuration(key) ? durationText(Number(json.default)) : String(json.default);
  const description = [json.description, shown === undefined ? undefined : `(default ${shown})`].filter(Boolean).join(' ');
  if (isDuration(key)) return { argument: '<duration>', help: `${description}; 500ms, 2s, 1m or milliseconds` };
  if (json.enum) return { argument: '<value>', help: [orList(json.enum.map(String)), description].filter(Boolean).join(': ') };
  return { argument: json.type === 'integer' || json.type === 'number' ? '<n>' : '<text>', help: description };
}

/** Every type's own options by name, with the types that take each. */
function typeOptions(): Map<string, { option: z.ZodType; types: string[] }> {
  const options = new Map<string, { option: z.ZodType; types: string[] }>();
  for (const type of checkTypes.values()) {
    for (const [key, option] of Object.entries(type.options)) {
      const entry = options.get(key);
      if (entry) entry.types.push(type.name);
      else options.set(key, { option: option as z.ZodType, types: [type.name] });
    }
  }
  return options;
}

/** The types that probe: the ones the common fields apply to. */
const probingTypes = () => [...checkTypes.values()].filter((type) => type.probe).map((type) => type.name);

export function addCheckFlags(command: Command): Command {
  for (const [key, option] of Object.entries(checkCommonShape)) {
    const { argument, help } = helpOf(key, option);
    command.option(`${flagOf(key)} ${argument}`, `${orList(probingTypes())}: ${help}`);
  }
  for (const [key, { option, types }] of typeOptions()) {
    if (key in checkCommonShape) continue;
    const { argument, help } = helpOf(key, option);
    command.option(`${flagOf(key)} ${argument}`, `${orList(types)}: ${help}`);
  }
  return command;
}

/** The health check the flags describe, or undefined without --health-check. */
export function checkFromFlags(flags: Record<string, unknown>): Record<string, unknown> | undefined {
  const keys = [...Object.keys(checkCommonShape), ...typeOptions().keys()];
  const given = keys.filter((key) => flags[propertyOf(key)] !== undefined);
  if (typeof flags.healthCheck !== 'string') {
    if (given[0] !== undefined) throw new CliError(`${flagOf(given[0])} needs --health-check`);
    return undefined;
  }
  const type = checkTypes.get(flags.healthCheck);
  if (!type) throw new CliError(`--health-check: one of ${orList(checkTypes.keys())}, not ${JSON.stringify(flags.healthCheck)}`);
  // A type that never probes has no use for the common fields either.
  const shape: z.ZodRawShape = type.probe ? { ...checkCommonShape, ...type.options } : type.options;
  const check: Record<string, unknown> = { type: type.name };
  for (const key of given) {
    const option = shape[key] as z.ZodType | undefined;
    if (!option) throw new CliError(`${flagOf(key)}: not an option of a ${type.name} check`);
    check[key] = parseOption(key, option, String(flags[propertyOf(key)]));
  }
  return check;
}
