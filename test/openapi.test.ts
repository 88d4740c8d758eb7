/**
 * The OpenAPI document as a contract, kernel-free: it is a valid OpenAPI 3 document,
 * it has every route the app serves with operation ids, tags, a description for each
 * status and an example for each body, the examples fit their schemas, and every error
 * code of the one list is answered by some request here, in the shape the document gives.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { type ErrorCode, errorCodeSchema } from '../control/state/errors.js';
import { type ModelDaemon, startModelDaemon } from './lib/model-daemon.js';
import { contractOf, type OpenApiContract } from './lib/openapi-contract.js';

const VIP = vipPath('tcp', '198.19.0.1', 80);
const BACKEND = vipPath('tcp', '198.19.0.1', 80, '198.18.0.11');
const TOKEN = 'openapi-test-token-0123456789';

let d: ModelDaemon;
let contract: OpenApiContract;
let document: OpenAPIV3.Document;
beforeAll(async () => {
  d = await startModelDaemon();
  contract = await contractOf(d.app);
  document = contract.document;
});
afterAll(async () => d?.close());

const operations = () =>
  Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item!)
      .filter(([method]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method))
      .map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation: operation as OpenAPIV3.OperationObject })),
  );

/** METHOD /path/{param} of every route the app serves but HEAD and the documentation UI's, from fastify's route tree. */
function servedRoutes(app: FastifyInstance): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│├└─ ]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + match[2]!;
    stack.push(path);
    for (const method of match[3]!.split(', ')) routes.push(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
  }
  return routes.filter((route) => !route.startsWith('HEAD ') && !/ \/documentation(\/|$)/.test(route)).sort();
}

/** The example of a media type: its own, or the first of its named ones, or its schema's. */
function exampleOf(media: OpenAPIV3.MediaTypeObject): unknown {
  const named = Object.values(media.examples ?? {})[0] as OpenAPIV3.ExampleObject | undefined;
  return media.example ?? named?.value ?? (media.schema as OpenAPIV3.SchemaObject | undefined)?.example;
}

describe('the document', () => {
  test('is a valid OpenAPI 3 document', async () => {
    const result = await new Validator().validate({ ...structuredClone(document) });
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  test('has every route the app serves, and nothing else', () => {
    expect(
      operations()
        .map((o) => o.name)
        .sort(),
    ).toEqual(servedRoutes(d.app));
  });

  test('every operation has a unique id, a tag, a summary, and a description for each status', () => {
    const ids = operations().map((o) => o.operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set(document.tags?.map((t) => t.name));
    for (const { name, operation } of operations()) {
      expect(operation.operationId, name).toMatch(/^[a-z][A-Za-z]+$/);
      expect(operation.tags?.length, name).toBe(1);
      expect(tags, name).toContain(operation.tags![0]);
      expect(operation.summary, name).toBeTruthy();
      for (const [status, response] of Object.entries(operation.responses)) {
        expect([name, status, (response as OpenAPIV3.ResponseObject).description]).not.toEqual([name, status, 'Default Response']);
      }
      // Every route may fail inside the daemon (the dashboard's fixed files cannot); the token check guards all but the probes and the page.
      expect(Object.keys(operation.responses), name).toContain(name.startsWith('GET /ui') ? '200' : '500');
      if (!operation.security) expect(Object.keys(operation.responses), name).toContain('401');
      // Path parameters can be invalid or too long; a change can carry an unreadable body and be rate limited.
      const inPath = operation.parameters?.filter((p) => (p as OpenAPIV3.ParameterObject).in === 'path') ?? [];
      if (inPath.length) expect(Object.keys(operation.responses), name).toEqual(expect.arrayContaining(['400', '414']));
      if (/^(PUT|DELETE|POST|PATCH) /.test(name)) {
        expect(Object.keys(operation.responses), name).toEqual(expect.arrayContaining(['400', '413', '415', '429']));
      }
    }
  });

  test('every body and response with content has an example, and each fits its schema', () => {
    const media = operations().flatMap(({ name, operation }) => [
      ...Object.entries((operation.requestBody as OpenAPIV3.RequestBodyObject | undefined)?.content ?? {}).map(([type, m]) => ({
        where: `${name} body ${type}`,
        type,
        m,
      })),
      ...Object.entries(operation.responses).flatMap(([status, response]) =>
        Object.entries((response as OpenAPIV3.ResponseObject).content ?? {}).map(([type, m]) => ({
          where: `${name} ${status} ${type}`,
          type,
          m,
        })),
      ),
    ]);
    expect(media.length).toBeGreaterThan(30);
    for (const { where, type, m } of media) {
      const examples = m.examples ? Object.values(m.examples).map((e) => (e as OpenAPIV3.ExampleObject).value) : [exampleOf(m)];
      expect(examples.length, where).toBeGreaterThan(0);
      for (const example of examples) {
        expect(example, where).toBeDefined();
        if (type === 'application/json') expect([where, contract.check(m.schema!, example)]).toEqual([where, []]);
        else expect(typeof example, where).toBe('string');
      }
    }
  });

  test('path parameters have examples', () => {
    for (const { name, operation } of operations()) {
      for (const parameter of (operation.parameters ?? []) as OpenAPIV3.ParameterObject[]) {
        expect([name, parameter.name, (parameter.schema as OpenAPIV3.SchemaObject).example]).not.toContain(undefined);
      }
    }
  });

  test("the error code enum is the API's one list of codes", () => {
    for (const { name, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const schema = (response as OpenAPIV3.ResponseObject).content?.['application/json']?.schema as OpenAPIV3.SchemaObject | undefined;
        const error = schema?.properties?.error as OpenAPIV3.SchemaObject | undefined;
        // Every failure is the error shape, but /readyz's 503, which answers readiness.
        if (Number(status) >= 400 && `${name} ${status}` !== 'GET /readyz 503')
          expect([name, status, (error?.properties?.code as OpenAPIV3.SchemaObject)?.enum]).toEqual([
            name,
            status,
            errorCodeSchema.options,
          ]);
      }
    }
  });
});

describe('every error code is answered as documented', () => {
  let dir: string;
  let limited: ModelDaemon;
  let guarded: ModelDaemon;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xlb-openapi-'));
    limited = await startModelDaemon({ maxVips: 1, mutationsPerMinute: 3 });
    guarded = await startModelDaemon({ token: TOKEN });
  });
  afterAll(async () => {
    await limited?.close();
    await guarded?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Codes no request here can bring about: they need a failing kernel or a bug. */
  const NOT_PROVOKED: ErrorCode[] = ['bad_request', 'internal', 'dataplane_unavailable'];

  /** A request with `payload` as it is, under `type`. */
  const raw = (
    method: 'PUT' | 'DELETE',
    url: string,
    payload: string,
    type: string,
    headers: Record<string, string> = {},
  ): InjectOptions => ({
    method,
    url,
    payload,
    headers: { 'content-type': type, ...headers },
  });
  const cases: { code: ErrorCode; status: number; request: InjectOptions; daemon?: () => ModelDaemon }[] = [
    { code: 'invalid_request', status: 400, request: { method: 'PUT', url: VIP, payload: { forwarding: 'nat' } } },
    { code: 'bad_url', status: 400, request: { method: 'GET', url: '/v1/vips/tcp/%zz/80' } },
    { code: 'bad_url', status: 414, request: { method: 'GET', url: `/v1/vips/tcp/${'1'.repeat(120)}/80` } },
    { code: 'fst_err_ctp_invalid_json_body', status: 400, request: raw('PUT', VIP, '{"forwarding": ', 'application/json') },
    {
      code: 'fst_err_ctp_invalid_content_length',
      status: 400,
      request: raw('PUT', VIP, '{"forwarding":"dsr"}', 'application/json', { 'content-length': '5' }),
    },
    { code: 'unauthorized', status: 401, request: { method: 'GET', url: '/v1/vips' }, daemon: () => guarded },
    { code: 'unauthorized', status: 401, request: { method: 'GET', url: '/nowhere' }, daemon: () => guarded },
    { code: 'not_found', status: 404, request: { method: 'GET', url: vipPath('udp', '198.19.0.9', 53) } },
    { code: 'not_found', status: 404, request: { method: 'DELETE', url: BACKEND } },
    { code: 'not_found', status: 404, request: { method: 'GET', url: '/nowhere' } },
    {
      code: 'fst_err_ctp_body_too_large',
      status: 413,
      request: { method: 'PUT', url: VIP, payload: { forwarding: 'dsr', padding: 'x'.repeat(70_000) } },
    },
    { code: 'fst_err_ctp_invalid_media_type', status: 415, request: raw('PUT', VIP, '<vip/>', 'application/xml') },
    { code: 'fst_err_ctp_invalid_media_type', status: 415, request: raw('DELETE', BACKEND, '<backend/>', 'application/xml') },
    { code: 'fst_err_ctp_invalid_media_type', status: 415, request: raw('PUT', VIP, 'forwarding=dsr', 'text/plain') },
    { code: 'upgrade_required', status: 426, request: { method: 'GET', url: '/v1/events' } },
  ];

  test.each(cases)('$code ($status): $request.method $request.url', async ({ code, status, request, daemon = () => d }) => {
    const answer = await daemon().app.inject(request);
    expect([answer.statusCode, answer.json().error.code]).toEqual([status, code]);
  });

  test('conflict (409): no room for another VIP; rate_limited (429): the fourth change in a minute', async () => {
    const put = async (url: string) => {
      const answer = await limited.app.inject({ method: 'PUT', url, payload: { forwarding: 'dsr' } });
      return [answer.statusCode, answer.statusCode < 300 ? null : answer.json().error.code];
    };
    expect(await put(VIP)).toEqual([201, null]);
    expect(await put(vipPath('tcp', '198.19.0.2', 80))).toEqual([409, 'conflict']);
    expect(await put(VIP)).toEqual([200, null]);
    expect(await put(VIP)).toEqual([429, 'rate_limited']);
  });

  test('store_unavailable (503): the state file cannot be written', async () => {
    const stored = await startModelDaemon({ dir });
    try {
      // A file where the state's directory should be: the state cannot be written.
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(dir, '');
      const answer = await stored.app.inject({ method: 'PUT', url: VIP, payload: { forwarding: 'dsr' } });
      expect([answer.statusCode, answer.json().error.code]).toEqual([503, 'store_unavailable']);
    } finally {
      await stored.close();
    }
  });

  test('every code is provoked above or named as one no request here can bring about', () => {
    const provoked = new Set<ErrorCode>([...cases.map((c) => c.code), 'conflict', 'rate_limited', 'store_unavailable']);
    expect([...provoked, ...NOT_PROVOKED].sort()).toEqual([...errorCodeSchema.options].sort());
  });
});

describe('responses fit the document', () => {
  test('the success answers of every operation', async () => {
    const inject = (options: InjectOptions) => d.app.inject(options);
    expect(
      (await inject({ method: 'PUT', url: VIP, payload: { forwarding: 'dsr', healthCheck: { type: 'tcp', port: 8080 } } })).statusCode,
    ).toBe(201);
    expect((await inject({ method: 'PUT', url: VIP, payload: { forwarding: 'dsr' } })).statusCode).toBe(200);
    expect((await inject({ method: 'PUT', url: BACKEND, payload: { weight: 3 } })).statusCode).toBe(201);
    expect((await inject({ method: 'PUT', url: BACKEND })).statusCode).toBe(200);
    expect((await inject({ method: 'PATCH', url: BACKEND, payload: { state: 'drain' } })).statusCode).toBe(200);
    for (const url of ['/v1/status', '/v1/vips', VIP, '/v1/stats', '/metrics', '/healthz', '/ui', '/ui/app.js', '/ui/style.css']) {
      expect([url, (await inject({ method: 'GET', url })).statusCode]).toEqual([url, 200]);
    }
    expect((await inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await inject({ method: 'HEAD', url: '/v1/vips' })).statusCode).toBe(200);
    expect((await inject({ method: 'DELETE', url: BACKEND })).statusCode).toBe(204);
    expect((await inject({ method: 'DELETE', url: VIP })).statusCode).toBe(204);
  });

  test('the events on the WebSocket fit the 101 schema', async () => {
    const schema = (document.paths['/v1/events']!.get!.responses['101'] as OpenAPIV3.ResponseObject).content!['application/json']!.schema!;
    const ws = await d.app.injectWS('/v1/events');
    const events: unknown[] = [];
    ws.on('message', (data: Buffer) => events.push(JSON.parse(data.toString('utf8'))));
    try {
      await d.app.inject({ method: 'PUT', url: VIP, payload: { forwarding: 'ipip' } });
      await d.app.inject({ method: 'PUT', url: BACKEND });
      d.controller.setAttached(true, null);
      await expect
        .poll(() => events.map((e) => (e as { type: string }).type), { timeout: 5000 })
        .toEqual(expect.arrayContaining(['config', 'link', 'stats']));
      for (const event of events) expect([event, contract.check(schema, event)]).toEqual([event, []]);
    } finally {
      ws.terminate();
      await d.app.inject({ method: 'DELETE', url: VIP });
    }
  });
});
