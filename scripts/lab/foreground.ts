/**
 * For the scripts that run a lab in the foreground (`npm run demo`, `npm run soak`):
 * the lab is removed however the run ends — normally, by an error, by Ctrl-C or
 * SIGTERM, or when stdout goes away (`npm run demo | head`), which would otherwise end
 * the process with EPIPE before any finally block ran and leave namespaces, pins and
 * processes behind.
 */
import { Lab } from './lab.js';

/** Exit codes for a run cut short, as a shell reports a process killed by the signal. */
const CUT_SHORT = { SIGINT: 130, SIGTERM: 143, EPIPE: 141 } as const;

export async function withLab<T>(tag: string, body: (lab: Lab) => Promise<T>): Promise<T> {
  let lab: Lab | undefined;
  let exitCode: number | undefined;
  const cutShort = (code: number) => {
    exitCode ??= code;
    // A lab still being built is removed as soon as Lab.create returns (or by it, if it fails).
    if (!lab) return;
    lab.destroy();
    process.exit(exitCode);
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
    lab = await Lab.create(tag);
    if (exitCode !== undefined) cutShort(exitCode);
    return await body(lab);
  } finally {
    lab?.destroy();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.stdout.off('error', onStdoutError);
    if (exitCode !== undefined) process.exit(exitCode);
  }
}
