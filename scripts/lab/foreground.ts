/**
 * For commands that build things in the foreground (`npm run demo`, `npm run soak`,
 * `npm run bench`): what they made is removed however the run ends — normally, by an
 * error, by Ctrl-C or SIGTERM, or when stdout goes away (`npm run demo | head`), which
 * would otherwise end the process with EPIPE before any finally block ran and leave
 * namespaces, pins and processes behind.
 */
import { Lab } from './lab.js';

/** Exit codes for a run cut short, as a shell reports a process killed by the signal. */
const CUT_SHORT = { SIGINT: 130, SIGTERM: 143, EPIPE: 141 } as const;

/** Runs `body`, then `remove`; if the run is cut short, `remove` and exit. */
export async function withCleanup<T>(body: () => Promise<T>, remove: () => void): Promise<T> {
  const cutShort = (code: number) => {
    remove();
    process.exit(code);
  };
  const onSigint = () => cutShort(CUT_SHORT.SIGINT);
  const onSigterm = () => cutShort(CUT_SHORT.SIGTERM);
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    cutShort(CUT_SHORT.EPIPE);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.stdout.on('error', onStdoutError);
  try {
    return await body();
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.stdout.off('error', onStdoutError);
    remove();
  }
}

/** A fresh lab for `body`, destroyed however the run ends (even while it is being built). */
export async function withLab<T>(tag: string, body: (lab: Lab) => Promise<T>): Promise<T> {
  let lab: Lab | undefined;
  return withCleanup(
    async () => body(await Lab.create(tag, {}, (started) => (lab = started))),
    () => lab?.destroy(),
  );
}
