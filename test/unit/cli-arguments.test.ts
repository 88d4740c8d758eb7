/** The CLI's duration parser, how help shows a duration, and check flags held to the schema's bounds. */
import { describe, expect, test } from 'vitest';
import { duration, durationText } from '../../control/cli/arguments.js';
import { checkFromFlags } from '../../control/cli/check-flags.js';

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
