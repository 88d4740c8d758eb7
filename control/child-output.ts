/** What a failed `execFile` run wrote to stderr (empty when it never ran, e.g. the program is missing). */
export const stderrOf = (error: unknown): string =>
  error instanceof Error && 'stderr' in error && typeof error.stderr === 'string' ? error.stderr : '';
