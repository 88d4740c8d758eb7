/** Errors the control plane reports to API clients: an HTTP status, a stable code, details. */
import { z } from 'zod';

/**
 * Every `error.code` the API answers with: the single list the OpenAPI document, the
 * error builder and XlbError take their codes from. The `fst_err_*` ones are fastify's
 * own codes for a body it cannot read, lower-cased.
 */
export const errorCodeSchema = z
  .enum([
    'invalid_request',
    'bad_request',
    'bad_url',
    'fst_err_ctp_invalid_json_body',
    'fst_err_ctp_invalid_content_length',
    'unauthorized',
    'not_found',
    'conflict',
    'fst_err_ctp_body_too_large',
    'fst_err_ctp_invalid_media_type',
    'upgrade_required',
    'rate_limited',
    'internal',
    'store_unavailable',
    'dataplane_unavailable',
  ])
  .describe(
    'invalid_request: a parameter or the body fails validation (400, details name each field); ' +
      'bad_request: a request that is not valid HTTP or a body that cannot be read (400, 408, 431); bad_url: an undecodable or too long URL (400, 414); ' +
      'fst_err_ctp_invalid_json_body: the body is not JSON (400); fst_err_ctp_invalid_content_length: the body does not match Content-Length (400); ' +
      'unauthorized: no valid bearer token (401); not_found: no such VIP, backend or route (404); ' +
      'conflict: the change clashes with the state, the host or the limits (409); ' +
      'fst_err_ctp_body_too_large: a body over 64 KiB, or 6.8 MiB for POST /v1/trace (413); ' +
      'fst_err_ctp_invalid_media_type: a body that is not application/json (415); ' +
      'upgrade_required: /v1/events without a WebSocket upgrade (426); rate_limited: too many changes, trace requests or traced packets a minute (429); ' +
      'internal: a failure in the daemon (500); store_unavailable: the change could not be saved (503); ' +
      'dataplane_unavailable: the change could not be applied to the kernel, or a trace has no kernel data plane to run on (503)',
  );
export type ErrorCode = z.infer<typeof errorCodeSchema>;

export class XlbError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details: unknown = undefined,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new XlbError(404, 'not_found', `${what} does not exist`);
export const conflict = (message: string, details?: unknown) => new XlbError(409, 'conflict', message, details);
export const invalid = (message: string, details?: unknown) => new XlbError(400, 'invalid_request', message, details);

/** One field at fault, named from the request's top (`body.healthCheck.port`, `params.port`). */
export interface FieldProblem {
  path: string;
  message: string;
}

/** The 400 of a request part (`body`, `params`) whose fields break a rule: the message names each field and why. */
export const invalidFields = (where: string, details: FieldProblem[]) =>
  invalid(`${where} is invalid: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
