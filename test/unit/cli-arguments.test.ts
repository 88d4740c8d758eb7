/** The CLI's duration parser and how help shows a duration. */
import { describe, expect, test } from 'vitest';
import { duration, durationText } from '../../control/cli/arguments.js';

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
