/** Who sent a request, as a configuration change's event names it: never the token itself, only its fingerprint. */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ClientIdentity } from '../controller/views.js';

/** The first 12 hex digits of the token's SHA-256: enough to tell tokens apart in a log, nothing to authenticate with. */
export const tokenFingerprint = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 12);

/**
 * The identity of a request that passed the token check: its peer address ('unix' on
 * the unix socket, whose peers have none) and the fingerprint of the daemon's token,
 * which is the one it presented.
 */
export function clientIdentity(token: string | undefined): (request: FastifyRequest) => ClientIdentity {
  const fingerprint = token ? tokenFingerprint(token) : null;
  return (request) => ({ peer: request.socket.remoteAddress ?? 'unix', token: fingerprint });
}
