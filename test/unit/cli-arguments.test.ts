/**
 * The CLI's duration parser, how help shows a duration, check flags held to the schema's
 * bounds, and the capture and trace commands refusing bad values before any call.
 */
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { duration, durationText } from '../../control/cli/arguments.js';
import { addCaptureCommand } from '../../control/cli/capture-command.js';
import { checkFromFlags } from '../../control/cli/check-flags.js';
import { CliError } from '../../control/cli/errors.js';
import { addTraceCommand } from '../../control/cli/trace-command.js';

describe('duration', () => {
  test.each([
    ['500ms', 500],
    ['2s', 2000],
    ['1m', 60_000],
    ['1500', 1500],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => expect(duration('--hc-interval', text)).toBe(ms));

  test.each(['1.5s', '2 s', ' 2s', '-1s', '+2s', '1h', '1S', 's', '02s', '0x10', '1e3', ''])(
    '%j is refused, naming the option and the forms',
    (text) =>
      expect(() => duration('--hc-timeout', text)).toThrow(
        `--hc-timeout: not a duration like 500ms, 2s, 1m or a whole number of milliseconds: ${JSON.stringify(text)}`,
      ),
  );

  test('help shows a duration in its largest whole unit', () => {
    expect([2000, 1000, 60_000, 1500, 0].map(durationText)).toEqual(['2s', '1s', '1m', '1500ms', '0s']);
  });
});

describe('check flags within the schema bounds', () => {
  test.each([
    [{ hcInterval: '99999999999s' }, '--hc-interval: at most 60m, not 99999999999s'],
    [{ hcTimeout: '10ms' }, '--hc-timeout: at least 50ms, not 10ms'],
    [{ hcRise: '0' }, '--hc-rise: at least 1, not 0'],
    [{ hcPort: '70000' }, '--hc-port: at most 65535, not 70000'],
  ])('%j is refused naming the flag and the bound', (flags, message) =>
    expect(() => checkFromFlags({ healthCheck: 'tcp', ...flags })).toThrow(message),
  );

  test('the bounds themselves are taken', () =>
    expect(checkFromFlags({ healthCheck: 'tcp', hcInterval: '60m', hcTimeout: '50ms', hcRise: '1' })).toEqual({
      type: 'tcp',
      intervalMs: 3_600_000,
      timeoutMs: 50,
      rise: 1,
    }));
});

describe('capture and trace flags and arguments', () => {
  /** The CliError `xlb ...args` fails with, before it reaches for the API (nothing listens at port 1). */
  async function refusal(verb: string, ...args: string[]): Promise<string> {
    const program = new Command('xlb').exitOverride();
    addCaptureCommand(program);
    addTraceCommand(program);
    const error = await program.parseAsync([verb, '--api', '127.0.0.1:1', ...args], { from: 'user' }).then(
      () => new Error('accepted'),
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(CliError);
    return error.message;
  }
  const capture = (...flags: string[]) => refusal('capture', '-w', '/dev/null', ...flags);

  test.each([
    [['--snaplen', '0'], '--snaplen: a whole number from 1 to 65535 in decimal digits, not "0"'],
    [['--snaplen', '65536'], '--snaplen: a whole number from 1 to 65535 in decimal digits, not "65536"'],
    [['--count', '0'], '--count: a whole number from 1 to 1000000 in decimal digits, not "0"'],
    [['--count', 'ten'], '--count: a whole number from 1 to 1000000 in decimal digits, not "ten"'],
    [['--vip', 'bogus'], '--vip: not a VIP as PROTO/ADDR:PORT (tcp/198.51.100.10:80, udp/[2001:db8::10]:53): "bogus"'],
    [['--vip', 'tcp/198.51.100.10:70000'], '--vip: port 70000 is over 65535'],
    [['--vip', 'udp/[fe80::1]:53'], '--vip: fe80::1 is a link-local address (fe80::/10), not a unicast address'],
    [['--backend', 'bogus'], '--backend: not an IPv4 or IPv6 address: "bogus"'],
    [['--outcome', 'tx_dsr', 'TX'], '--outcome: "TX" is not an outcome name (as in /v1/stats) or a glob of them, e.g. drop_*'],
  ])('xlb capture %j: %s', async (flags, message) => expect(await capture(...flags)).toBe(message));

  test.each([
    [['tcp', 'bogus', '198.51.100.10:80'], 'source: expected ADDRESS:PORT or [IPV6]:PORT'],
    [['tcp', '203.0.113.7:41000', '198.51.100.300:80'], 'destination: not an IPv4 or IPv6 address: "198.51.100.300"'],
    [['udp', '203.0.113.7:41000', '198.51.100.10:65536'], 'destination: port 65536 is over 65535'],
    [['tcp', '203.0.113.7:41000', '[2001:db8::10]:80'], 'destination: source and destination must both be IPv4 or both IPv6'],
    [['sctp', '203.0.113.7:41000', '198.51.100.10:80'], 'protocol: Invalid option: expected one of "tcp"|"udp"|"icmp"'],
    [['--frame', 'zz'], '--frame: hex digits, two per byte'],
    [['--frame', '0200'], '--frame: at least 14 bytes (an Ethernet header)'],
  ])('xlb trace %j: %s', async (args, message) => expect(await refusal('trace', ...args)).toBe(message));
});
