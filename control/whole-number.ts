/**
 * Whole numbers written in decimal digits only, for text that means a number (CLI
 * options, serve flags and YAML): Number() would also read '0x50', '1e1', '+80', ' 80'
 * and '080', and YAML reads 0x5dc and 1e3 as numbers.
 */
export const DECIMAL_DIGITS = /^(0|[1-9][0-9]*)$/;

/** The number `text` spells in decimal digits, or null. */
export function parseWholeNumber(text: string): number | null {
  return DECIMAL_DIGITS.test(text) ? Number(text) : null;
}
