/** The built xlb command (dist/), run as a child process, and a daemon for it to talk to. */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packagePath } from '../../control/paths.js';
import { startTestDaemon, type TestDaemon } from './daemon.js';

export const run = promisify(execFile);
export const CLI = packagePath('dist/control/cli/main.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function exitOf(command: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(command, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as Result;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `xlb ...args`: its exit code and output. */
export const xlb = (...args: string[]) => exitOf(process.execPath, [CLI, ...args]);

/** `xlb ...args` run through `wrapper` (e.g. setpriv as another user). */
export const xlbThrough = ([command, ...options]: [string, ...string[]], ...args: string[]) =>
  exitOf(command, [...options, process.execPath, CLI, ...args]);

/**
 * `xlb ...args` with its stdout a pipe that closes after the first output, as `| head -1`
 * closes it; `afterCut` makes the command write again. Its first output and its exit.
 */
export async function xlbCutShort(args: string[], afterCut: () => Promise<void> = async () => {}) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const closed = once(child, 'close');
  try {
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    child.stdout.destroy();
    await afterCut();
    const [code] = (await closed) as [number | null];
    return { first: String(first), code, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** A test daemon whose API listens on a unix socket in a fresh directory: `api` is its --api. */
export async function startSocketDaemon(): Promise<{ d: TestDaemon; dir: string; api: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-cli-'));
  const d = await startTestDaemon();
  const socket = join(dir, 'api.sock');
  await d.app.listen({ path: socket });
  const close = async () => {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { d, dir, api: `unix:${socket}`, close };
}
