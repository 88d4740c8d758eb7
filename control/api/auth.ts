/**
 * Bearer-token authorization, decided after the router has resolved the request: the
 * app registers the routes that need the token (and its 404 handler) in one
 * encapsulated plugin whose onRequest hook is `requireToken`, so whatever spelling of
 * a URL the router accepts, the route it resolves to is the one that is checked.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';

/** The query parameter a route may take the token from (browsers cannot set headers on a WebSocket). */
export const QUERY_TOKEN = 'access_token';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route also takes the token as `?access_token=`. */
    queryToken?: boolean;
  }
}

/** True when the request carries the configured token (always, when none is configured). */
export type TokenCheck = (request: FastifyRequest) => boolean;

const digest = (text: string) => createHash('sha256').update(text).digest();

export function tokenCheck(token: string | undefined): TokenCheck {
  if (!token) return () => true;
  const expected = digest(token);
  return (request) => {
    const presented = bearer(request.headers.authorization) ?? queryToken(request);
    // Digests have one length, so the comparison takes the same time whatever was sent.
    return presented !== undefined && timingSafeEqual(digest(presented), expected);
  };
}

/** The token of an Authorization header. A header that is not a bearer token presents '', which never matches: the query cannot stand in for a bad header. */
function bearer(header: string | undefined): string | undefined {
  return header === undefined ? undefined : (/^Bearer +(\S.*)$/i.exec(header)?.[1] ?? '');
}

/** The decoded `access_token` of a route configured for it; a repeated one counts as none. */
function queryToken(request: FastifyRequest): string | undefined {
  if (request.routeOptions.config.queryToken !== true) return undefined;
  const value = (request.query as Record<string, unknown> | null)?.[QUERY_TOKEN];
  return typeof value === 'string' ? value : undefined;
}

export function sendUnauthorized(reply: FastifyReply): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', 'Bearer')
    .send({ error: { code: 'unauthorized', message: 'a valid bearer token is required' } });
}

export function requireToken(authorized: TokenCheck): onRequestAsyncHookHandler {
  return async (request, reply) => {
    if (!authorized(request)) return sendUnauthorized(reply);
  };
}

/**
 * The URL with everything from its query, fragment or `;params` on (plain or
 * percent-encoded) replaced by a marker, so no token reaches a log line, whatever
 * parameter it was put in and however it is spelled.
 */
export function redactQuery(url: string): string {
  const end = url.search(/[?#;]|%3[fb]|%23/i);
  return end < 0 ? url : `${url.slice(0, end)}?[redacted]`;
}
