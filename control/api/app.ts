/**
 * The REST API as a fastify app factory (no listening here, so tests use inject()):
 * zod schemas validate every request and generate the OpenAPI document at
 * /documentation; errors have one shape, {error: {code, message, details}}.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Controller } from '../controller/controller.js';
import { type ErrorCode, errorCodeSchema, invalidFields, XlbError } from '../state/errors.js';
import { errorBody } from './schemas.js';
import { clientErrorHandler } from './client-errors.js';
import { redactQuery, requireToken, sendUnauthorized, tokenCheck } from './auth.js';
import { type CaptureSource, captureRoutes } from './capture.js';
import { clientIdentity } from './client-identity.js';
import { eventsRoute, MAX_CLIENT_MESSAGE } from './events.js';
import { probeRoutes } from './probes.js';
import { metricsRoute } from './metrics.js';
import { openapiOptions } from './openapi.js';
import { DebugRequestLog } from './request-log.js';
import { uiRoute } from './ui.js';
import { vipRoutes } from './vips.js';
import { traceRoutes } from './trace.js';
import { type DryRunner, FlowTracer } from '../trace/tracer.js';

export interface AppOptions {
  controller: Controller;
  /** When set, every route but /healthz, /readyz and /ui needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  logger?: FastifyServerOptions['logger'] | undefined;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Changes (PUT, DELETE) each client may make per minute; default 600. */
  mutationsPerMinute?: number;
  /** The data plane's dry run for /v1/trace (none: trace answers 503). */
  dryRun?: DryRunner | undefined;
  /** The kernel side of GET /v1/capture; without it, captures answer 503. */
  capture?: CaptureSource | undefined;
}

/** Logger settings that keep bearer tokens out of every log line (headers, query values). */
export function loggerOptions(level: string, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  return {
    level,
    ...(stream ? { stream } : {}),
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.headers.authorization'], censor: '[redacted]' },
    serializers: {
      // No Host header: a client can put anything there, and this daemon knows its own name.
      req: (req: { method: string; url: string; ip: string }) => ({
        method: req.method,
        url: redactQuery(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
}

/** The code of an error fastify raised before a handler ran: its own, lower-cased, when the API lists it. */
function frameworkCode(error: FastifyError): ErrorCode {
  const parsed = errorCodeSchema.safeParse(error.code?.toLowerCase());
  return parsed.success ? parsed.data : 'bad_request';
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const authorized = tokenCheck(options.token);
  const app = Fastify({
    logger: options.logger ?? false,
    logController: new DebugRequestLog(),
    bodyLimit: 64 * 1024,
    clientErrorHandler,
    // A URL the router cannot decode names no route: without the token it gets 401 like any other.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      // An upgrade's socket is no longer the HTTP server's to close.
      if (request.headers.upgrade) reply.raw.once('finish', () => request.raw.socket.destroy());
      if (authorized(request)) reply.code(error.statusCode ?? 400).send(errorBody('bad_url', error.message));
      else sendUnauthorized(reply);
    },
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // An empty body is no body, whatever its content type says; anything else is parsed as fastify does.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // Bodies are JSON: a text body is 415 like any other type, not a string the schema then refuses.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    body === '' ? done(null, undefined) : parseJson(request, body as string, done),
  );

  await app.register(swagger, openapiOptions(options.controller.status().version, Boolean(options.token)));
  await app.register(websocket, {
    options: { maxPayload: MAX_CLIENT_MESSAGE },
    // A client that breaks the WebSocket protocol (ws's WS_ERR_* codes) is its own mistake, not the daemon's.
    errorHandler: (error, socket, request) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code?.startsWith('WS_ERR_')) request.log.debug({ code, message: error.message }, 'event client broke the protocol');
      else request.log.error({ err: error }, 'event stream failed');
      socket.terminate();
    },
  });
  // Opt-in per route (the mutations in vips.ts); clients on the unix socket share a key.
  await app.register(rateLimit, {
    global: false,
    keyGenerator: (request) => request.ip ?? 'local',
    errorResponseBuilder: (_, context) => ({
      statusCode: 429,
      ...errorBody('rate_limited', `more than ${context.max} changes a minute; try again in ${context.after}`),
    }),
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof XlbError) {
      // The daemon could not apply a valid change (store or data plane): the operator's log says so.
      if (error.status >= 500) request.log.warn({ code: error.code, err: error }, 'change not applied');
      return reply.code(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'request';
      const details = error.validation.map((v) => ({
        path: [where, ...v.instancePath.split('/').filter(Boolean)].join('.'),
        message: v.message ?? 'invalid',
      }));
      const refused = invalidFields(where, details);
      return reply.code(400).send(errorBody(refused.code, refused.message, details));
    }
    if (error.statusCode === 429) return reply.code(429).send(error);
    if (error.statusCode && error.statusCode < 500) {
      return reply.code(error.statusCode).send(errorBody(frameworkCode(error), error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'internal error'));
  });
  await app.register(probeRoutes, { controller: options.controller });

  await app.register(uiRoute);

  // Everything that reads or changes configuration or state, and every unmatched
  // request, is decided here by the route the router resolved.
  await app.register(async (guarded) => {
    guarded.addHook('onRequest', requireToken(authorized));
    guarded.setNotFoundHandler((request, reply) =>
      reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`)),
    );
    await guarded.register(swaggerUi, { routePrefix: '/documentation' });
    await guarded.register(vipRoutes, {
      controller: options.controller,
      mutationsPerMinute: options.mutationsPerMinute ?? 600,
      identify: clientIdentity(options.token),
    });
    await guarded.register(metricsRoute, { controller: options.controller });
    await guarded.register(eventsRoute, { controller: options.controller });
    await guarded.register(traceRoutes, {
      tracer: new FlowTracer(options.controller, options.dryRun),
      perMinute: options.mutationsPerMinute ?? 600,
    });
    await guarded.register(captureRoutes, {
      controller: options.controller,
      source: options.capture,
      mutationsPerMinute: options.mutationsPerMinute ?? 600,
    });
  });
  return app;
}
