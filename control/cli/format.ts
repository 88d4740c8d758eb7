/** Human output: aligned tables and SI-scaled numbers. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const scale = (value: number, base: number, units: string[]): string => {
  let i = 0;
  while (value >= base && i < units.length - 1) {
    value /= base;
    i++;
  }
  return `${i === 0 ? Math.round(value) : value.toFixed(1)}${units[i]}`;
};

export const formatBytes = (bytes: number) => scale(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
export const formatRate = (value: number, unit: string) => `${scale(value, 1000, ['', 'k', 'M', 'G'])}${unit}`;
