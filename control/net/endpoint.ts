/** Where the API listens or is reached: HOST:PORT, [IPv6]:PORT or a unix socket. */
import { parseWholeNumber } from '../whole-number.js';

export type ApiEndpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseApiEndpoint(text: string): ApiEndpoint {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw new Error('unix socket path must be absolute');
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) throw new Error('expected HOST:PORT, [IPv6]:PORT or unix:/path');
  const port = parseWholeNumber(m[3]!);
  if (port === null || port < 1 || port > 65535) throw new Error('port must be 1..65535 in decimal digits');
  return { kind: 'tcp', host: (m[1] ?? m[2])!, port };
}

export function isLoopback(endpoint: ApiEndpoint): boolean {
  if (endpoint.kind === 'unix') return true;
  return endpoint.host === 'localhost' || endpoint.host === '::1' || /^127\./.test(endpoint.host);
}
