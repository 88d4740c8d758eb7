/**
 * `xlb serve` options: flags, optionally a YAML file (--config, keys as the long
 * flags), validated by one zod schema so a bad value names its flag and why.
 */
import { parse as parseYaml, type Tags } from 'yaml';
import { z } from 'zod';
import { canonicalAddress, MAC_PATTERN, parseAddress } from '../net/address.js';
import { DEFAULT_FLOW_IDLE_TIMEOUT, DEFAULT_FLOWS, DEFAULT_MAX_BACKENDS, DEFAULT_MAX_VIPS, DEFAULT_RING_SIZE } from '../dataplane/codec.js';
import { xdpModeSchema } from '../dataplane/xdp-mode.js';
import { DEFAULT_FLOOD_THRESHOLD } from '../controller/flood-state.js';
import { MiB, readRegularFile } from '../files.js';
import { parseApiEndpoint } from '../net/endpoint.js';
import { isPrime } from '../maglev/maglev.js';
import { addressRefusal } from '../net/address-policy.js';
import { EtcdStateStore } from '../state/etcd-store.js';
import { DECIMAL_DIGITS, parseWholeNumber } from '../whole-number.js';

/**
 * The largest Maglev ring: the paper's larger M, the size the builder's working arrays
 * are made for. Weighted builds of 100 backends take ~0.1 s here (~0.7 s at 4194301,
 * ~7 s at 16777213, each a stall of the API); each ring is 4 bytes a slot.
 */
export const MAX_RING_SIZE = 655373;
const RING_SIZE_RANGE = `must be a prime from 2 to ${MAX_RING_SIZE}`;

/** A numeric option: a number (YAML, in-process callers) or decimal digits (flags arrive as strings). */
const wholeNumberOption = z.unknown().transform((value, ctx) => {
  const number = typeof value === 'string' ? parseWholeNumber(value) : value;
  if (typeof number === 'number') return number;
  ctx.addIssue({ code: 'custom', message: `not a whole number in decimal digits: ${JSON.stringify(value)}` });
  return z.NEVER;
});
const numberOption = <T extends z.ZodType<number, number>>(range: T) => wholeNumberOption.pipe(range);

/** YAML reads only decimal digits as numbers, as for flags: 0x5dc, 1e3, +1500, 01500 and 1500.0 stay text, which numeric options refuse. */
const yamlOptions = {
  customTags: (tags: Tags) => [
    ...tags.filter((tag) => !/^(int|float)|:(int|float)$/.test(typeof tag === 'string' ? tag : tag.tag)),
    { tag: 'tag:yaml.org,2002:int', default: true, test: DECIMAL_DIGITS, resolve: (text: string) => Number(text) },
  ],
};

/** address[/prefix]: the prefix's host bits are varied per flow (receive-side scaling on backends). */
const sourceSchema = (family: 4 | 6, maxFlowBits: number) =>
  z.string().transform((text, ctx) => {
    const slash = text.indexOf('/');
    const address = slash < 0 ? text : text.slice(0, slash);
    const prefix = slash < 0 ? undefined : text.slice(slash + 1);
    try {
      const parsed = parseAddress(address);
      if (parsed.family !== family) throw new Error(`not an IPv${family} address`);
      const refusal = addressRefusal(address);
      if (refusal) throw new Error(refusal);
      const bits = family === 4 ? 32 : 128;
      const length = prefix === undefined ? bits : parseWholeNumber(prefix);
      if (length === null || length < bits - maxFlowBits || length > bits) {
        throw new Error(`prefix length must be ${bits - maxFlowBits}..${bits}`);
      }
      return { address: parsed.bytes, flowBits: bits - length };
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)}: ${(error as Error).message}` });
      return z.NEVER;
    }
  });

/** ADDRESS@ASN, e.g. 198.18.0.254@65000 or 2001:db8::fe@65000. */
const bgpPeerSchema = z.string().transform((text, ctx) => {
  const m = /^(.+)@(\d+)$/.exec(text);
  const asn = m && parseWholeNumber(m[2]!);
  try {
    if (!m || asn === null || asn < 1 || asn > 4294967295) throw new Error('expected ADDRESS@ASN, e.g. 198.18.0.254@65000');
    const address = canonicalAddress(m[1]!);
    const refusal = addressRefusal(m[1]!);
    if (refusal) throw new Error(refusal);
    return { address, asn };
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)}: ${(error as Error).message}` });
    return z.NEVER;
  }
});

export const serveOptionsSchema = z
  .strictObject({
    iface: z
      .string()
      .min(1, 'an interface name, not empty')
      .max(15, 'an interface name of at most 15 characters')
      .regex(/^[^\s/]*$/, "an interface name: no '/' or white space"),
    xdpMode: xdpModeSchema.default('native'),
    api: z
      .string()
      .default('127.0.0.1:9180')
      .transform((text, ctx) => {
        try {
          return parseApiEndpoint(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
    bpffs: z.string().startsWith('/').default('/sys/fs/bpf/xlb'),
    state: z.string().startsWith('/').default('/var/lib/xlb/state.json'),
    tokenFile: z.string().optional(),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    mutationsPerMinute: numberOption(z.number().int().min(1).max(1_000_000)).default(600),
    gatewayMac: z.string().regex(MAC_PATTERN, 'a MAC like 02:00:00:00:00:01').optional(),
    sourceV4: sourceSchema(4, 16).optional(),
    sourceV6: sourceSchema(6, 32).optional(),
    mtu: numberOption(z.number().int().min(576).max(65535)).default(1500),
    ringSize: numberOption(
      z
        .number()
        .int()
        .min(2, { message: RING_SIZE_RANGE, abort: true })
        .max(MAX_RING_SIZE, { message: RING_SIZE_RANGE, abort: true })
        .refine(isPrime, RING_SIZE_RANGE),
    ).default(DEFAULT_RING_SIZE),
    maxVips: numberOption(z.number().int().min(1).max(65536)).default(DEFAULT_MAX_VIPS),
    maxBackends: numberOption(
      z
        .number()
        .int()
        .min(1)
        .max(1 << 20),
    ).default(DEFAULT_MAX_BACKENDS),
    // 16 bytes a flow: 1 << 26 flows take 1 GiB.
    maxFlows: numberOption(
      z
        .number()
        .int()
        .min(64)
        .max(1 << 26),
    ).default(DEFAULT_FLOWS),
    // Up to a week: the table's clock (24 bits of seconds) tells expired from protected within 97 days.
    flowIdleTimeout: numberOption(z.number().int().min(1).max(604_800)).default(DEFAULT_FLOW_IDLE_TIMEOUT),
    hashSeed: numberOption(z.number().int().min(0).max(0xffffffff)).default(0x786c62),
    floodThreshold: numberOption(z.number().int().min(1).max(1_000_000_000)).default(DEFAULT_FLOOD_THRESHOLD),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    bgp: z.boolean().default(false),
    bgpAsn: numberOption(z.number().int().min(1).max(4294967295)).default(65001),
    bgpPeer: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((p) => p.trim()).filter(Boolean))
      .pipe(z.array(bgpPeerSchema))
      .default([]),
    bgpRouterId: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'an IPv4 address')
      .optional(),
    birdDir: z.string().startsWith('/').default('/run/xlb/bird'),
    store: z
      .string()
      .transform((text, ctx) => {
        try {
          return EtcdStateStore.parseUrl(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)}: ${(error as Error).message}` });
          return z.NEVER;
        }
      })
      .optional(),
  })
  .refine((o) => !o.bgp || o.bgpPeer.length > 0, { message: '--bgp needs at least one --bgp-peer ADDRESS@ASN', path: ['bgpPeer'] })
  .refine((o) => !o.tlsCert === !o.tlsKey, { message: '--tls-cert and --tls-key go together', path: ['tlsCert'] });

export type ServeOptions = z.output<typeof serveOptionsSchema>;

/** A serve option's default as its help shows it: a text or a number; undefined for none (or a flag, or a list). */
export function serveOptionDefault(name: string): string | number | undefined {
  if (!Object.hasOwn(serveOptionsSchema.shape, name)) return undefined;
  let option = serveOptionsSchema.shape[name as keyof typeof serveOptionsSchema.shape] as z.ZodType;
  while (option instanceof z.ZodPipe) option = option.in as z.ZodType;
  const value: unknown = option instanceof z.ZodDefault ? option.def.defaultValue : undefined;
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

const camel = (key: string) => key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Merges a YAML config file (if any) under the command-line flags and validates. */
export function resolveServeOptions(flags: Record<string, unknown>, configPath?: string): ServeOptions {
  let fromFile: Record<string, unknown> = {};
  if (configPath) {
    const parsed = parseYaml(readRegularFile(configPath, 'config file', MiB).toString('utf8'), yamlOptions) ?? {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${configPath}: expected a mapping of option: value`);
    fromFile = Object.fromEntries(Object.entries(parsed).map(([k, v]) => [camel(k), v]));
  }
  const merged = { ...fromFile, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
  const result = serveOptionsSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `--${kebab(String(i.path[0] ?? ''))}: ${i.message}`);
    throw new Error(`invalid options:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}
