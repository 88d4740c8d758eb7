/** A CliError is the user's mistake (exit 1); anything else is xlb's (exit 2). */
export class CliError extends Error {}

export function fail(error: unknown): never {
  process.stderr.write(`xlb: ${(error as Error).message}\n`);
  process.exit(error instanceof CliError ? 1 : 2);
}
