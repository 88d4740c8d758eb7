/** The API's bearer token, read from a file by the daemon and by the CLI. */
import { statSync } from 'node:fs';
import { KiB, readRegularFile } from './files.js';

/** RFC 6750 b64token: what an Authorization: Bearer header can carry. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MIN_LENGTH = 16;

/** What an operator can act on, for the errors of opening or stating the file. */
function accessError(path: string, error: NodeJS.ErrnoException): Error {
  if (error.code === 'ENOENT') return new Error(`token file ${path} does not exist`);
  if (error.code === 'EACCES' || error.code === 'EPERM')
    return new Error(`token file ${path} is not readable by this user (permission denied)`);
  if (error.code === 'ENOTDIR') return new Error(`token file ${path}: a part of the path is not a directory`);
  return error;
}

function readToken(path: string, isPrivate: boolean): string {
  try {
    if (isPrivate) {
      const mode = statSync(path).mode & 0o777;
      if (mode & 0o077) throw new Error(`token file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    }
    return readRegularFile(path, 'token file', 4 * KiB).toString('latin1');
  } catch (error) {
    throw accessError(path, error as NodeJS.ErrnoException);
  }
}

/**
 * The token in `path`: one line (a final newline is allowed) of RFC 6750 b64token
 * characters, at least 16 long. Anything else could never match a request, so it
 * is refused rather than locking every client out. With `private`, the file must
 * not be readable by group or others.
 */
export function readTokenFile(path: string, options: { private?: boolean } = {}): string {
  const token = readToken(path, options.private ?? false).replace(/\r?\n$/, '');
  if (token === '') throw new Error(`token file ${path} is empty`);
  if (!B64TOKEN.test(token)) {
    throw new Error(
      `token file ${path}: the token must be one line of letters, digits and -._~+/ with optional trailing = (RFC 6750 b64token)`,
    );
  }
  if (token.length < MIN_LENGTH) throw new Error(`token file ${path}: the token must be at least ${MIN_LENGTH} characters`);
  return token;
}
