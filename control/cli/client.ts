/** A small HTTP client for the xlb API over TCP or a unix socket, used by the CLI and tests. */
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import { type ApiEndpoint, parseApiEndpoint } from '../net/endpoint.js';

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export class ApiClient {
  readonly endpoint: ApiEndpoint;
  private readonly tls: boolean;

  /** `api`: HOST:PORT, https://HOST:PORT or unix:/path; `ca`: a CA (PEM) to trust for https. */
  constructor(
    api: string,
    private readonly token?: string,
    private readonly ca?: Buffer,
  ) {
    this.tls = api.startsWith('https://');
    this.endpoint = parseApiEndpoint(this.tls ? api.slice('https://'.length) : api);
  }

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = this.send(method, path, payload, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text) parsed = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      });
      req.on('error', reject);
    });
  }

  /** A GET whose answer is read as it comes (a capture's stream): the response, unread. */
  stream(path: string): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => this.send('GET', path, undefined, resolve).on('error', reject));
  }

  private send(
    method: string,
    path: string,
    payload: Buffer | undefined,
    onResponse: (res: http.IncomingMessage) => void,
  ): http.ClientRequest {
    const target =
      this.endpoint.kind === 'unix' ? { socketPath: this.endpoint.path } : { host: this.endpoint.host, port: this.endpoint.port };
    const transport = this.tls ? https : http;
    const req = transport.request(
      {
        ...target,
        ...(this.ca ? { ca: this.ca } : {}),
        method,
        path,
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
      },
      onResponse,
    );
    req.end(payload);
    return req;
  }

  /** A WebSocket to `path` (e.g. /v1/events) with the endpoint, token and CA of requests. */
  webSocket(path: string): WebSocket {
    const { endpoint } = this;
    const url =
      endpoint.kind === 'unix'
        ? `ws+unix:${endpoint.path}:${path}`
        : `${this.tls ? 'wss' : 'ws'}://${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}${path}`;
    return new WebSocket(url, {
      ...(this.ca ? { ca: this.ca } : {}),
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
    });
  }
}

/** The API path of a VIP (and optionally one of its backends); addresses are URL-encoded. */
export function vipPath(protocol: string, address: string, port: number | string, backend?: string): string {
  const base = `/v1/vips/${encodeURIComponent(protocol)}/${encodeURIComponent(address)}/${encodeURIComponent(String(port))}`;
  return backend === undefined ? base : `${base}/backends/${encodeURIComponent(backend)}`;
}
