/**
 * The API's unix socket. The daemon holds the lock on its path (lock.ts), so a socket
 * already there is left by a daemon that has ended and may go; anything else there
 * (a symlink, a file, a directory) is not xlb's and is left alone.
 */
import { chmodSync, lstatSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** Refuses a path that holds something other than a socket. */
export function checkSocketPath(path: string): void {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat && !stat.isSocket()) {
    const kind = stat.isSymbolicLink()
      ? 'a symlink'
      : stat.isDirectory()
        ? 'a directory'
        : stat.isFile()
          ? 'a regular file'
          : 'not a socket';
    throw new Error(`--api unix:${path}: ${path} is ${kind}; xlb replaces only a stale socket there`);
  }
}

/**
 * Listens on `path` with mode 0600: bound under a name of this process's, then renamed
 * into place, so the socket appears complete and a stale one is replaced at once.
 * Returns what removes it after the server closes: only while it is still this socket.
 */
export async function listenUnix(app: FastifyInstance, path: string): Promise<() => void> {
  checkSocketPath(path);
  const bound = join(dirname(path), `.xlb-api-${process.pid}.sock`);
  await app.listen({ path: bound });
  chmodSync(bound, 0o600);
  const { ino } = statSync(bound);
  renameSync(bound, path);
  return () => {
    if (lstatSync(path, { throwIfNoEntry: false })?.ino === ino) rmSync(path);
  };
}
