/**
 * The OpenAPI document as a contract for responses: `checkResponse` says how a response
 * breaks the document (an undocumented status, a body off its schema), and
 * `holdToDocument` makes an app's inject() throw on any such response, and on any 500
 * (a handler's answer off its schema comes out of the serializer as one), so every API
 * test that goes through it checks the document as well.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';

export interface SeenResponse {
  method: string;
  /** The request target: path and query, as sent. */
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

interface Operation {
  method: string;
  template: string;
  /** The template's segments; a `{parameter}` takes any one. */
  segments: string[];
  operation: OpenAPIV3.OperationObject;
}

/** Routes fastify adds for the documentation UI, which the document leaves out. */
const UNDOCUMENTED = /^\/documentation(\/|$)/;

export class OpenApiContract {
  // Not strict: OpenAPI 3.0 schemas carry `example`, which is no JSON Schema keyword.
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly validators = new Map<object, ValidateFunction>();
  private readonly operations: Operation[];
  private readonly errorSchema: OpenAPIV3.SchemaObject;

  constructor(readonly document: OpenAPIV3.Document) {
    this.operations = Object.entries(document.paths).flatMap(([template, item]) =>
      (['get', 'put', 'post', 'delete', 'patch'] as const).flatMap((method) => {
        const operation = item?.[method];
        return operation ? [{ method: method.toUpperCase(), template, segments: template.split('/'), operation }] : [];
      }),
    );
    const unauthorized = this.operations.map((o) => o.operation.responses['401']).find((r) => r !== undefined);
    this.errorSchema = (unauthorized as OpenAPIV3.ResponseObject).content!['application/json']!.schema as OpenAPIV3.SchemaObject;
  }

  /** The operation a request names, if the document has it (HEAD is GET without a body). */
  operationOf(method: string, url: string): Operation | undefined {
    const segments = segmentsOf(url);
    const asked = method === 'HEAD' ? 'GET' : method;
    return this.operations.find(
      (o) =>
        o.method === asked &&
        segments?.length === o.segments.length &&
        o.segments.every((s, i) => (s.startsWith('{') && segments[i] !== '') || s === segments[i]),
    );
  }

  /** What is wrong with `response` by the document: nothing is []. */
  checkResponse(response: SeenResponse): string[] {
    const { method, url, status } = response;
    const where = `${method} ${url} answered ${status}`;
    if (UNDOCUMENTED.test(segmentsOf(url)?.join('/') ?? '')) return [];
    const found = this.operationOf(method, url);
    if (!found) {
      // No route: the 404 handler, or the token check or the router in front of it.
      if (![400, 401, 404, 414].includes(status)) return [`${where}, which no route answers`];
      return method === 'HEAD' ? [] : this.checkBody(where, this.errorSchema, response);
    }
    const documented = found.operation.responses[String(status)] as OpenAPIV3.ResponseObject | undefined;
    if (!documented) return [`${where}: not a status ${method} ${found.template} documents`];
    if (status === 101 || method === 'HEAD') return [];
    if (!documented.content) return response.body === '' ? [] : [`${where} with a body where the document has none`];
    const mediaType = response.contentType?.split(';')[0]?.trim();
    const media = mediaType === undefined ? undefined : documented.content[mediaType];
    if (!media?.schema) return [`${where} as ${mediaType}, not a type the document names (${Object.keys(documented.content).join(', ')})`];
    return mediaType === 'application/json' ? this.checkBody(where, media.schema as OpenAPIV3.SchemaObject, response) : [];
  }

  /** Schema problems of a JSON value, for a message; [] when it fits. */
  check(schema: object, value: unknown): string[] {
    const validate = this.validators.get(schema) ?? this.ajv.compile(schema);
    this.validators.set(schema, validate);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  }

  private checkBody(where: string, schema: OpenAPIV3.SchemaObject, response: SeenResponse): string[] {
    let value: unknown;
    try {
      value = JSON.parse(response.body);
    } catch {
      return [`${where} with a body that is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`];
    }
    return this.check(schema, value).map((problem) => `${where}: body ${problem}: ${response.body.slice(0, 300)}`);
  }
}

/**
 * The decoded segments of a request target's path (origin or absolute form), as the
 * router sees them: an encoded slash stays inside its segment; null for no path.
 */
function segmentsOf(target: string): string[] | null {
  const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').split(/[?#]/)[0]!;
  if (!path.startsWith('/')) return null;
  try {
    return path.split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
}

/** The document an app serves (@fastify/swagger's, once the app is ready). */
export async function contractOf(app: FastifyInstance): Promise<OpenApiContract> {
  await app.ready();
  return new OpenApiContract(app.swagger() as OpenAPIV3.Document);
}

/** Makes `app.inject(options)` throw when a response breaks the document the app serves. */
export function holdToDocument(app: FastifyInstance): FastifyInstance {
  const inject = app.inject.bind(app);
  let contract: Promise<OpenApiContract> | undefined;
  const checked = async (options: InjectOptions | string): Promise<LightMyRequestResponse> => {
    const response = await inject(options);
    contract ??= contractOf(app);
    const request = typeof options === 'string' ? { method: 'GET', url: options } : options;
    const problems = (await contract).checkResponse({
      method: (request.method ?? 'GET').toUpperCase(),
      url: typeof request.url === 'string' ? request.url : String(request.path ?? '/'),
      status: response.statusCode,
      contentType: response.headers['content-type']?.toString(),
      body: response.body,
    });
    if (problems.length) throw new Error(`the response breaks the OpenAPI document:\n${problems.join('\n')}`);
    // A handler's answer off its schema fails in the serializer as a 500: in a test, every 500 is a bug.
    if (response.statusCode >= 500 && response.statusCode !== 503) throw new Error(`${response.statusCode} from the API: ${response.body}`);
    return response;
  };
  // Only the promise form: the chained and callback forms go on unchecked.
  app.inject = ((options?: InjectOptions | string, callback?: unknown) =>
    options === undefined || callback !== undefined
      ? (inject as (...args: unknown[]) => unknown)(options, callback)
      : checked(options)) as typeof app.inject;
  return app;
}
