/**
 * Authorization against a real `xlb serve` with --token-file, over raw HTTP/1.1 bytes
 * on its unix socket so that nothing normalises a request target on the way: every
 * route and method under every spelling of its path is 401 without the token (or a
 * 400 from Node's HTTP parser), and changes nothing; the query token works on the
 * events route only, and no query value reaches the logs.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { OpenAPIV3 } from 'openapi-types';
import { ApiClient } from '../control/cli/client.js';
import { packagePath } from '../control/paths.js';
import { DaemonProcess } from '../scripts/lab/lab.js';
import { Namespaces, nsRun } from '../scripts/lab/netns.js';
import { OpenApiContract } from './lib/openapi-contract.js';

const TOKEN = 'attack-suite-token-0123456789abcdef';
const VIP = '/v1/vips/tcp/198.19.0.1/80';
const BACKEND = `${VIP}/backends/198.18.0.11`;

interface Route {
  path: string;
  /** The body a PUT (or another method with a body) sends: one that would change the state if it got through. */
  body?: string;
  websocket?: boolean;
}

const ROUTES: Route[] = [
  { path: '/v1/status' },
  { path: '/v1/vips' },
  { path: VIP, body: '{"forwarding":"dsr","healthCheck":{"type":"none"}}' },
  { path: BACKEND, body: '{"weight":7}' },
  { path: '/v1/stats' },
  { path: '/v1/events', websocket: true },
  { path: '/metrics' },
  { path: '/documentation' },
  { path: '/documentation/json' },
  { path: '/documentation/yaml' },
  { path: '/documentation/static/index.html' },
];

const namespaces = new Namespaces('auth');
const pins = `/sys/fs/bpf/${namespaces.prefix}`;
let dir: string;
let socket: string;
let statePath: string;
let daemon: DaemonProcess;
let contract: OpenApiContract;
/** Everything the daemon wrote to stdout (its log). */
let log = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), `${namespaces.prefix}-`));
  socket = join(dir, 'api.sock');
  statePath = join(dir, 'state.json');
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  chmodSync(tokenFile, 0o600);
  const ns = namespaces.create('lb');
  nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
  nsRun(ns, 'ip', ['link', 'set', 'veth1', 'up']);
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${ns}`,
      process.execPath,
      packagePath('dist/control/cli/main.js'),
      'serve',
      '--iface',
      'veth0',
      '--xdp-mode',
      'generic',
      '--api',
      `unix:${socket}`,
      '--state',
      statePath,
      '--bpffs',
      pins,
      '--token-file',
      tokenFile,
      '--log-level',
      'trace',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  daemon = new DaemonProcess(child, new ApiClient(`unix:${socket}`, TOKEN));
  await daemon.ready();
  expect((await daemon.api.request('PUT', VIP, { forwarding: 'ipip', healthCheck: { type: 'none' } })).status).toBe(201);
  expect((await daemon.api.request('PUT', BACKEND, {})).status).toBe(201);
  contract = new OpenApiContract((await daemon.api.request('GET', '/documentation/json')).body as OpenAPIV3.Document);
}, 60_000);

afterAll(async () => {
  // SIGKILL: a graceful stop waits for connections, and a failed case may leave one open.
  await daemon?.stop('SIGKILL');
  namespaces.cleanup();
  rmSync(pins, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `request` as it is to the API socket; resolves with the response once the server closes (or switches
 * protocols), and rejects one the API answered off the OpenAPI document.
 */
function raw(request: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const conn = connect({ path: socket });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no response in 5 s to ${JSON.stringify(request.slice(0, 120))}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, end < 0 ? text.length : end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const response = {
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1] ?? 0),
        headers,
        body: end < 0 ? '' : text.slice(end + 4),
      };
      // Node's HTTP parser refuses some requests itself, with no body: those never reached the API.
      const [method = '', url = ''] = request.split(' ', 2);
      const problems = headers['content-type']
        ? contract.checkResponse({ method, url, status: response.status, contentType: headers['content-type'], body: response.body })
        : [];
      if (problems.length) reject(new Error(`the response breaks the OpenAPI document:\n${problems.join('\n')}`));
      else resolve(response);
    };
    conn.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (/^HTTP\/1\.1 101 [^]*\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) {
        conn.destroy();
        finish();
      }
    });
    conn.on('close', finish);
    conn.on('error', () => undefined); // the server may reset after answering; 'close' follows
    conn.end(request);
  });
}

/** A request as bytes: `target` goes into the request line untouched. */
function request(
  method: string,
  target: string,
  options: { body?: string | undefined; token?: string; websocket?: boolean; headers?: string[] } = {},
): string {
  const headers = ['Host: localhost', ...(options.headers ?? [])];
  if (options.token) headers.push(`Authorization: Bearer ${options.token}`);
  if (options.websocket)
    headers.push('Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==');
  else headers.push('Connection: close');
  if (options.body !== undefined) headers.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(options.body)}`);
  return `${method} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n${options.body ?? ''}`;
}

const hex = (byte: number) => byte.toString(16).padStart(2, '0');

/** Overlong UTF-8 forms of an ASCII character (two and three bytes), which decoders must refuse. */
const overlong = (c: string) => {
  const code = c.charCodeAt(0);
  return [`%${hex(0xc0 | (code >> 6))}%${hex(0x80 | (code & 0x3f))}`, `%e0%${hex(0x80 | (code >> 6))}%${hex(0x80 | (code & 0x3f))}`];
};

/** Every spelling of `path` tried: each one names the route, or one like it, to some parser somewhere. */
function spellings(path: string): string[] {
  const out = new Set<string>();
  // Percent-encoding of each character in turn: upper and lower hex, and encoded twice.
  for (let i = 0; i < path.length; i++) {
    const code = hex(path.charCodeAt(i));
    for (const encoded of [`%${code.toUpperCase()}`, `%${code}`, `%25${code.toUpperCase()}`])
      out.add(path.slice(0, i) + encoded + path.slice(i + 1));
  }
  const [, first = '', rest = ''] = /^(\/[^/]*)(.*)$/.exec(path)!;
  for (const authority of ['localhost', 'LOCALHOST:9180', '127.0.0.1:80', '[::1]', 'user@localhost']) {
    out.add(`http://${authority}${path}`);
    out.add(`HTTP://${authority}${path}`);
    out.add(`https://${authority}${path}`);
  }
  for (const variant of [
    `/${path}`,
    path.replaceAll('/', '//'),
    `//localhost${path}`,
    `/.${path}`,
    `${first}/.${rest}`,
    `/x/..${path}`,
    `${first}/x/..${rest}`,
    `${first}/%2e%2e${path}`,
    path.toUpperCase(),
    `/${first.slice(1, 2).toUpperCase()}${first.slice(2)}${rest}`,
    `${path}/`,
    `${path}/.`,
    `${first};x${rest}`,
    `${path};x`,
    `${path}?`,
    `${path}?a=b&c`,
    `${path}#`,
    `${path}#fragment`,
    `${path}?#`,
    path.replaceAll('/', '\\'),
    `\\${path}`,
    `${path}%00`,
    `${path}%20`,
    `${path}%09`,
    `/%20${path.slice(1)}`,
    `${path}\t`,
    ` ${path}`,
    path.replace('/', '%EF%BC%8F'), // fullwidth solidus
    ...overlong(path.charAt(1)).map((o) => `/${o}${path.slice(2)}`),
    ...(rest ? overlong('/').map((o) => `${first}${o}${rest.slice(1)}`) : []),
  ]) {
    out.add(variant);
  }
  return [...out];
}

/** Runs `tasks` eight at a time. */
async function pool<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/** The answer when Node's HTTP parser refuses a request line (a target not starting with `/`, a tab, a backslash). */
const PARSER_REFUSED = '{"error":{"code":"bad_request","message":"the request is not valid HTTP/1.1"}}';

/** What a request without a valid token may get: 401 in the API's error shape, or the parser's 400. */
function refused(method: string, res: RawResponse): boolean {
  if (res.status === 400 && res.body === PARSER_REFUSED) return true;
  if (res.status !== 401 || res.headers['www-authenticate'] !== 'Bearer') return false;
  return method === 'HEAD' || JSON.parse(res.body).error.code === 'unauthorized';
}

describe('without the token', () => {
  test('every route, method and spelling is refused and the state file stays byte-identical', async () => {
    const stateBefore = readFileSync(statePath, 'utf8');
    const cases: { method: string; target: string; route: Route }[] = [];
    for (const route of ROUTES) {
      for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS']) cases.push({ method, target: route.path, route });
      for (const target of spellings(route.path)) for (const method of ['GET', 'PUT', 'DELETE']) cases.push({ method, target, route });
    }
    const results = await pool(
      cases.map(({ method, target, route }) => async () => {
        const body = ['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method) ? undefined : (route.body ?? '{}');
        const plain = await raw(request(method, target, { body }));
        const wrong = await raw(request(method, target, { body, token: 'not-the-token-0123456789' }));
        const upgrade = route.websocket && method === 'GET' ? await raw(request(method, target, { websocket: true })) : plain;
        return { method, target, plain, wrong, upgrade };
      }),
    );
    const leaks = results.flatMap(({ method, target, plain, wrong, upgrade }) =>
      [plain, wrong, upgrade]
        .filter((res) => !refused(method, res))
        .map((res) => `${method} ${JSON.stringify(target)} -> ${res.status} ${res.body.slice(0, 80)}`),
    );
    expect(leaks).toEqual([]);
    // Most spellings are well-formed HTTP: refused by authorization, not by the parser.
    expect(results.filter((r) => r.plain.status === 401).length).toBeGreaterThan(results.length * 0.9);
    expect(readFileSync(statePath, 'utf8')).toBe(stateBefore);
  }, 120_000);

  test('spellings the router resolves to a route get that route, token check included', async () => {
    // With the token these reach /v1/vips (200), or no route (404): without it, all are 401.
    const resolved: [string, number][] = [
      ['/%76%31/vips', 200],
      ['/v1/%76ips', 200],
      ['http://localhost:9180/v1/vips', 200],
      ['HTTP://LOCALHOST/v1/vips', 200],
      ['/v1/vips?x=1', 200],
      ['/v1/vips#x', 200],
      ['/v1%2fvips', 404],
    ];
    for (const [target, status] of resolved) {
      const withToken = await raw(request('GET', target, { token: TOKEN }));
      expect([target, withToken.status, (await raw(request('GET', target))).status]).toEqual([target, status, 401]);
      if (status === 200) expect(JSON.parse(withToken.body).vips[0]).toMatchObject({ address: '198.19.0.1' });
    }
    expect((await raw(request('GET', '/%76%31/events', { websocket: true, token: TOKEN }))).status).toBe(101);
    expect((await raw(request('GET', '/%76%31/events', { websocket: true }))).status).toBe(401);
  });

  test('/healthz, /readyz and the /ui page stay open', async () => {
    for (const path of ['/healthz', '/readyz', '/ui']) expect((await raw(request('GET', path))).status).toBe(200);
    const ui = await raw(request('GET', '/ui'));
    expect(ui.headers['content-type']).toMatch(/^text\/html/);
    expect(ui.body).not.toContain('198.19.0.1');
  });
});

describe('the query token', () => {
  const events = (query: string) => raw(request('GET', `/v1/events${query}`, { websocket: true }));

  test('opens the events WebSocket by its decoded name, exactly once, and nothing else', async () => {
    expect((await events(`?access_token=${TOKEN}`)).status).toBe(101);
    expect((await events(`?access%5Ftoken=${TOKEN}`)).status).toBe(101);
    expect((await events(`?access%5ftoken=${encodeURIComponent(TOKEN)}`)).status).toBe(101);
    expect((await events(`?x=1&access_token=${TOKEN}&y=2`)).status).toBe(101);
    expect((await raw(request('GET', `/%76%31/events?access_token=${TOKEN}`, { websocket: true }))).status).toBe(101);
    // Names are case-sensitive; a repeated token is ambiguous; a header, if sent, is what counts.
    for (const query of [
      `?ACCESS_TOKEN=${TOKEN}`,
      `?Access_Token=${TOKEN}`,
      `?access_token=${TOKEN}&access_token=${TOKEN}`,
      '?access_token=wrong-token-0123456789',
      '?access_token=',
    ]) {
      expect([query, (await events(query)).status]).toEqual([query, 401]);
    }
    expect(
      (
        await raw(
          request('GET', `/v1/events?access_token=${TOKEN}`, {
            websocket: true,
            headers: ['Authorization: Bearer wrong-token-0123456789'],
          }),
        )
      ).status,
    ).toBe(401);
    for (const path of ['/v1/vips', '/v1/status', '/v1/stats', VIP, '/metrics', '/documentation/json', '/nothing']) {
      for (const name of ['access_token', 'access%5Ftoken']) {
        expect([path, name, (await raw(request('GET', `${path}?${name}=${TOKEN}`))).status]).toEqual([path, name, 401]);
      }
    }
  });

  test('the logs never hold the token, whatever parameter carries it and however it is spelled', async () => {
    const secret = encodeURIComponent(TOKEN);
    const queries = [
      `?access_token=${TOKEN}`,
      `?access%5Ftoken=${TOKEN}`,
      `?access%5ftoken=${TOKEN}`,
      `?%61ccess_token=${TOKEN}`,
      `?ACCESS_TOKEN=${TOKEN}`,
      `?access%5FTOKEN=${TOKEN}`,
      `?x=1&access_token=${TOKEN}`,
      `?access_token=${TOKEN}&access_token=${TOKEN}`,
      `?access_token=${TOKEN}#access_token=${TOKEN}`,
      `#access_token=${TOKEN}`,
      `?x=1?access_token=${TOKEN}`,
      `?x=1;access_token=${TOKEN}`,
      `?access_token=${TOKEN.slice(0, 8)}%23${TOKEN.slice(8)}`,
      `?access_token=${TOKEN.slice(0, 8)}#${TOKEN.slice(8)}`,
      `?access_token=${secret}`,
      `?access_token[]=${TOKEN}`,
      `?access_token%00=${TOKEN}`,
      `?access_token%20=${TOKEN}`,
      `?%20access_token=${TOKEN}`,
      `?note=${TOKEN}`,
      `?x=1&pasted=${secret}`,
      `;access_token=${TOKEN}`,
      `%3Faccess_token=${TOKEN}`,
      `%3faccess_token=${TOKEN}`,
      `%23access_token=${TOKEN}`,
    ];
    for (const query of queries) {
      await raw(request('GET', `/v1/events${query}`, { websocket: true }));
      await raw(request('GET', `/v1/vips${query}`));
      await raw(request('GET', `/nothing${query}`));
    }
    await raw(request('GET', '/v1/status', { token: TOKEN }));
    await raw(request('GET', '/v1/status').replace('Host: localhost', `Host: ${TOKEN}`));
    // The log is a pipe: wait until a request sent after all of the above shows up in it.
    const marker = `/nothing-marker-${process.pid}-${Date.now()}`;
    await raw(request('GET', marker, { token: TOKEN }));
    await expect.poll(() => log.includes(marker), { timeout: 10_000 }).toBe(true);
    for (const piece of [TOKEN, TOKEN.slice(8), secret]) expect(log).not.toContain(piece);
  });
});

describe('bodies', () => {
  test('a DELETE with content-type JSON and no body is a DELETE (404 for what is missing, 204 for what is there)', async () => {
    const del = (path: string, headers: string[]) => raw(request('DELETE', path, { token: TOKEN, headers }));
    for (const headers of [
      ['Content-Type: application/json'],
      ['Content-Type: application/json', 'Content-Length: 0'],
      ['Content-Type: application/json; charset=utf-8', 'Content-Length: 0'],
    ]) {
      expect((await del('/v1/vips/tcp/198.19.0.9/80', headers)).status).toBe(404);
    }
    expect(
      (
        await raw(
          request('PUT', '/v1/vips/tcp/198.19.0.9/80', { token: TOKEN, body: '{"forwarding":"ipip","healthCheck":{"type":"none"}}' }),
        )
      ).status,
    ).toBe(201);
    expect(
      (
        await raw(
          request('PUT', '/v1/vips/tcp/198.19.0.9/80/backends/198.18.0.12', {
            token: TOKEN,
            headers: ['Content-Type: application/json', 'Content-Length: 0'],
          }),
        )
      ).status,
    ).toBe(201);
    expect(
      (await del('/v1/vips/tcp/198.19.0.9/80/backends/198.18.0.12', ['Content-Type: application/json', 'Content-Length: 0'])).status,
    ).toBe(204);
    expect((await del('/v1/vips/tcp/198.19.0.9/80', ['Content-Type: application/json'])).status).toBe(204);
    // A body that is not JSON is still refused, naming why.
    const bad = await raw(request('PUT', VIP, { token: TOKEN, body: '{"forwarding": ' }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.message).toMatch(/JSON/i);
  });
});

describe('with the token', () => {
  test('the canonical paths answer 2xx', async () => {
    const ok = async (method: string, path: string, status: number, body?: string) =>
      expect([method, path, (await raw(request(method, path, { token: TOKEN, body }))).status]).toEqual([method, path, status]);
    for (const path of ['/v1/status', '/v1/vips', VIP, '/v1/stats', '/metrics', '/documentation/json', '/documentation/yaml'])
      await ok('GET', path, 200);
    const openapi = JSON.parse((await raw(request('GET', '/documentation/json', { token: TOKEN }))).body);
    expect(openapi.security).toEqual([{ bearer: [] }]);
    expect(openapi.paths['/metrics'].get.description).toMatch(/Authorization: Bearer/);
    const docs = await raw(request('GET', '/documentation', { token: TOKEN }));
    expect(docs.status).toBeGreaterThanOrEqual(200);
    expect(docs.status).toBeLessThan(300);
    expect((await raw(request('GET', '/v1/events', { token: TOKEN, websocket: true }))).status).toBe(101);
    await ok('PUT', VIP, 200, '{"forwarding":"ipip","healthCheck":{"type":"none"}}');
    await ok('PUT', BACKEND, 200, '{"weight":3}');
    await ok('DELETE', BACKEND, 204);
    await ok('DELETE', VIP, 204);
    expect(JSON.parse(readFileSync(statePath, 'utf8')).vips).toEqual([]);
  });
});
