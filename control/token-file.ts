/** The API's bearer token, read from a file by the daemon and by the CLI. */
import { statSync } from 'node:fs';
import { KiB, readRegularFile } from './files.js';

/** RFC 6750 b64token: what an Authorization: Bearer header can carry. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MIN_LENGTH = 16;

/**
 * The token in `path`: one line (a final newline is allowed) of RFC 6750 b64token
 * characters, at least 16 long. Anything else could never match a request, so it
 * is refused rather than locking every client out. With `private`, the file must
 * not be readable by group or others.
 */
export function readTokenFile(path: string, options: { private?: boolean } = {}): string {
  if (options.private) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) throw new Error(`token file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  }
  const token = readRegularFile(path, 'token file', 4 * KiB)
    .toString('latin1')
    .replace(/\r?\n$/, '');
  if (!B64TOKEN.test(token)) {
    throw new Error(
      `token file ${path}: the token must be one line of letters, digits and -._~+/ with optional trailing = (RFC 6750 b64token)`,
    );
  }
  if (token.length < MIN_LENGTH) throw new Error(`token file ${path}: the token must be at least ${MIN_LENGTH} characters`);
  return token;
}
