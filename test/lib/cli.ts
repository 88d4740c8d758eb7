/** The built xlb command (dist/), run as a child process. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { packagePath } from '../../control/paths.js';

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
