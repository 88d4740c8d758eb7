/** Order statistics of measured samples. */

/** The p-th percentile of `values` by nearest rank (rounding down). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const value = sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  if (value === undefined) throw new RangeError('no samples to take a percentile of');
  return value;
}

export const median = (values: readonly number[]): number => percentile(values, 50);
