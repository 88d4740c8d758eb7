/**
 * API shapes beyond the desired-state schemas and the controller's views (controller/views.ts):
 * path parameters, bodies, the error answer, and the responses as the OpenAPI document
 * shows them (a description for each status and an example).
 */
import { z } from 'zod';
import { backendPatchSchema } from '../controller/backend-patch.js';
import { type ErrorCode, errorCodeSchema } from '../state/errors.js';
import { addressSchema, backendSpecSchema, portParamSchema, protocolSchema, vipKeySchema, vipSpecSchema } from '../state/schema.js';
import { backendBodyExample, vipBodyExample } from './examples.js';

// `example`, not `examples`: zod leaves the latter out of a transforming schema's input side.
export const vipParamsSchema = vipKeySchema.extend({
  protocol: protocolSchema.meta({ example: 'tcp' }),
  address: addressSchema.meta({ example: '203.0.113.10' }),
  port: portParamSchema.meta({ example: '80' }),
});
export const backendParamsSchema = vipParamsSchema.extend({ backend: addressSchema.meta({ example: '10.0.0.11' }) });

/** Bodies: a VIP's settings are required, a backend's all have defaults. */
export const vipBodySchema = vipSpecSchema.meta({ examples: [vipBodyExample] });
/** No body (or null) means all defaults. */
export const backendBodySchema = z.preprocess((body) => body ?? {}, backendSpecSchema.meta({ examples: [backendBodyExample] }));

/** A PATCH names only what changes. */
export const backendPatchBodySchema = backendPatchSchema.meta({ examples: [{ state: 'drain' }, { weight: 3 }] });

export const errorSchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string().describe('What went wrong, for a person'),
    details: z.unknown().optional().describe('For invalid_request, [{path, message}] per field; for some conflicts, what clashed'),
  }),
});
export type ErrorBody = z.infer<typeof errorSchema>;

/** The answer to every failed request. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** A response as the document shows it: `schema` with what its status means here and an example. */
export const documented = <T extends z.ZodType>(schema: T, description: string, example: z.output<T>) =>
  schema.meta({ description, examples: [example] });

const failure = (description: string, example: ErrorBody) => documented(errorSchema, description, example);

/** Each error status with what it means and an example; a route lists the ones it can answer. */
export const errorResponses = {
  400: failure(
    'A path parameter or the body is invalid (invalid_request, with details per field), the URL cannot be decoded (bad_url) ' +
      'or the request or its body cannot be read (bad_request, fst_err_ctp_invalid_json_body, fst_err_ctp_invalid_content_length)',
    errorBody('invalid_request', 'body is invalid: body.forwarding: Invalid option: expected one of "dsr"|"ipip"', [
      { path: 'body.forwarding', message: 'Invalid option: expected one of "dsr"|"ipip"' },
    ]),
  ),
  401: failure('No valid bearer token (only when the daemon has a token)', errorBody('unauthorized', 'a valid bearer token is required')),
  404: failure('No such VIP or backend', errorBody('not_found', 'VIP tcp/203.0.113.10:80 does not exist')),
  409: failure(
    "The change clashes with another VIP or backend, the host's addresses or the data plane's limits",
    errorBody('conflict', 'no room for another VIP: the data plane holds at most 1024', { limit: 1024 }),
  ),
  413: failure('The body is over 64 KiB', errorBody('fst_err_ctp_body_too_large', 'Request body is too large')),
  414: failure(
    'A path parameter is over 100 characters',
    errorBody('bad_url', "'/v1/vips/tcp/2001:db8:…' is exceeding the max param length"),
  ),
  415: failure('A body that is not application/json', errorBody('fst_err_ctp_invalid_media_type', 'Unsupported Media Type')),
  426: failure('Not a WebSocket upgrade', errorBody('upgrade_required', 'GET /v1/events is a WebSocket: send Upgrade: websocket')),
  429: failure(
    'More changes a minute than the daemon allows this client (--mutations-per-minute)',
    errorBody('rate_limited', 'more than 600 changes in 1 minute; try again later'),
  ),
  500: failure('A failure in the daemon (logged)', errorBody('internal', 'internal error')),
  503: failure(
    'The change could not be saved (store_unavailable) or applied to the kernel (dataplane_unavailable); nothing changed',
    errorBody('store_unavailable', 'change not saved to the state file /var/lib/xlb/state.json: ENOSPC: no space left on device'),
  ),
};

/** The error responses of `statuses`, for a route's `response`. */
export const errorsOf = <S extends keyof typeof errorResponses>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((status) => [status, errorResponses[status]])) as Pick<typeof errorResponses, S>;
