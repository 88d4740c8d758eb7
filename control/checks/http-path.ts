/**
 * A health check's HTTP request target: an RFC 3986 absolute path and optional query
 * in printable ASCII, so Node's http.get sends it as given and never throws on it.
 */
export const HTTP_PATH_MAX = 1024;

/** unreserved, sub-delims, ':', '@', '/', '?' (RFC 3986 pchar, path and query). */
const ALLOWED = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?]/;

const describe = (char: string) => {
  const code = char.codePointAt(0)!;
  const name = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return code > 0x20 && code < 0x7f ? `${JSON.stringify(char)} (${name})` : name;
};

/** Why `path` cannot be a health-check path, or null when it can. Positions count from 0, in code points. */
export function httpPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must start with /';
  if (path.startsWith('//')) return 'must not start with // (that would name a host)';
  const chars = [...path];
  if (chars.length > HTTP_PATH_MAX) return `longer than ${HTTP_PATH_MAX} characters`;
  for (const [i, char] of chars.entries()) {
    if (char === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(chars.slice(i + 1, i + 3).join(''))) return `"%" at position ${i} is not followed by two hex digits`;
      continue;
    }
    if (!ALLOWED.test(char)) {
      const hint = char === '#' ? ' (a fragment is never sent)' : ' (percent-encode it)';
      return `character ${describe(char)} at position ${i} is not allowed in a path or query${hint}`;
    }
  }
  return null;
}
