/**
 * What a capture asks for, as the API's query gives it: the VIP (PROTO/ADDR:PORT), a
 * backend address, outcome names or globs (`drop_*`), a packet count and a snaplen;
 * and their kernel form (struct xlb_capture_settings).
 */
import { z } from 'zod';
import { OUTCOMES } from '../dataplane/codec.js';
import { addressSchema, type VipKey, vipKeySchema } from '../state/schema.js';
import { parseWholeNumber } from '../whole-number.js';

export const MAX_CAPTURE_COUNT = 1_000_000;
export const MAX_SNAPLEN = 65535;

const vipTextPattern = /^(tcp|udp)\/(?:\[([^\]]+)\]|([^:/[\]]+)):(0|[1-9][0-9]{0,4})$/;

/** A VIP as `xlb` writes it, tcp/198.51.100.10:80 or udp/[2001:db8::10]:53. */
export const vipTextSchema = z
  .string()
  .max(80)
  .transform((text, ctx): VipKey => {
    const m = vipTextPattern.exec(text);
    const port = Number(m?.[4]);
    const parsed = m && port <= 65535 ? vipKeySchema.safeParse({ protocol: m[1], address: m[2] ?? m[3], port }) : null;
    if (parsed?.success) return parsed.data;
    // Each message names the value once: the whole text, or the part at fault.
    const message = !m
      ? `not a VIP as PROTO/ADDR:PORT (tcp/198.51.100.10:80, udp/[2001:db8::10]:53): ${JSON.stringify(text)}`
      : parsed
        ? (parsed.error.issues[0]?.message ?? 'not a VIP')
        : `port ${port} is over 65535`;
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  });

const globPattern = (glob: string) => new RegExp(`^${glob.replace(/\*/g, '[a-z0-9_]*')}$`);

/** An outcome name or glob, as the bit mask of the outcomes it names (at least one). */
const outcomeGlobSchema = z.string().transform((glob, ctx) => {
  if (!/^[a-z0-9_*]{1,40}$/.test(glob)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(glob)} is not an outcome name (as in /v1/stats) or a glob of them, e.g. drop_*`,
    });
    return z.NEVER;
  }
  const pattern = globPattern(glob);
  const mask = OUTCOMES.reduce((bits, name, bit) => (pattern.test(name) ? bits | (1 << bit) : bits), 0);
  if (mask) return mask;
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(glob)} names no outcome (${OUTCOMES.join(', ')})` });
  return z.NEVER;
});

/** Every outcome. */
export const ALL_OUTCOMES = (1 << OUTCOMES.length) - 1;

/** Comma-separated or repeated: outcome=drop_*,tx_dsr or outcome=drop_*&outcome=tx_dsr. */
const outcomesSchema = z
  .union([z.string(), z.array(z.string()).max(OUTCOMES.length)])
  .transform((value) => (Array.isArray(value) ? value : [value]).flatMap((text) => text.split(',')))
  .pipe(z.array(outcomeGlobSchema).min(1).max(OUTCOMES.length))
  .transform((masks) => masks.reduce((all, mask) => all | mask, 0));

/** Decimal digits for a number in min..max; refused with the range and the value. */
const wholeText = (max: number, min = 1) =>
  z.string().transform((text, ctx) => {
    const number = parseWholeNumber(text);
    if (number !== null && number >= min && number <= max) return number;
    ctx.addIssue({ code: 'custom', message: `a whole number from ${min} to ${max} in decimal digits, not ${JSON.stringify(text)}` });
    return z.NEVER;
  });

export const captureQuerySchema = z.strictObject({
  vip: vipTextSchema.optional().describe("Only this VIP's packets: PROTO/ADDR:PORT").meta({ example: 'tcp/198.51.100.10:80' }),
  backend: addressSchema.optional().describe('Only packets sent to this backend address (in any VIP)').meta({ example: '10.0.0.11' }),
  outcome: outcomesSchema
    .optional()
    .meta({ example: 'drop_*' })
    .describe('Only these outcomes (names as in /v1/stats, globs allowed: drop_*), comma-separated or repeated; default all'),
  count: wholeText(MAX_CAPTURE_COUNT)
    .optional()
    .meta({ example: '100' })
    .describe(`Stop after this many packets (each with its sent copy), at most ${MAX_CAPTURE_COUNT}; default: until stopped`),
  snaplen: wholeText(MAX_SNAPLEN)
    .optional()
    .meta({ example: '128' })
    .describe(`Bytes kept of each frame, 1..${MAX_SNAPLEN}; default ${MAX_SNAPLEN}`),
});
export type CaptureQuery = z.output<typeof captureQuerySchema>;
