/** What every API verb shares: the --api/--token-file/--ca-file/--json flags, one call, and printing. */
import type { IncomingMessage } from 'node:http';
import { type Command, Option } from 'commander';
import { serveOptionDefault } from '../daemon/options.js';
import { MiB, readRegularFile } from '../files.js';
import { readTokenFile } from '../token-file.js';
import { ApiClient, type ApiResponse } from './client.js';
import { CliError } from './errors.js';

export interface ClientOptions {
  api: string;
  tokenFile?: string;
  caFile?: string;
  json?: boolean;
}

/** The client of these options; a token or CA file that cannot be used is a CliError naming it. */
export function apiClient(api: string, tokenFile: string | undefined, caFile?: string): ApiClient {
  try {
    const token = tokenFile ? readTokenFile(tokenFile) : undefined;
    return new ApiClient(api, token, caFile ? readRegularFile(caFile, '--ca-file', MiB) : undefined);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}

export const unreachable = (options: ClientOptions, error: unknown) =>
  new CliError(`cannot reach the API at ${options.api}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);

export async function call<T>(options: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  const client = apiClient(options.api, options.tokenFile, options.caFile);
  let response: ApiResponse<T | { error: { code: string; message: string; details?: unknown } }>;
  try {
    response = await client.request(method, path, body);
  } catch (error) {
    throw unreachable(options, error);
  }
  if (response.status >= 400) {
    const error = (response.body as { error?: { message: string } }).error;
    throw new CliError(`${response.status}: ${error?.message ?? String(response.body)}`);
  }
  return response.body as T;
}

/**
 * With --json, `value`: always an object, the API's answer when it is one, a list
 * under the key the API uses for it (`{vips}`, `{backends}`); else the human text.
 */
export const print = (options: { json?: boolean | undefined }, value: object, human: () => string) => {
  process.stdout.write(options.json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
};

export const withClient = (command: Command) =>
  command
    .addOption(
      new Option('--api <endpoint>', 'daemon API: HOST:PORT, https://HOST:PORT or unix:/path')
        .env('XLB_API')
        .default(serveOptionDefault('api')),
    )
    .addOption(new Option('--ca-file <file>', 'CA certificate (PEM) to trust for an https API').env('XLB_CA_FILE'))
    .addOption(new Option('--token-file <file>', 'bearer token for the API').env('XLB_TOKEN_FILE'))
    .option('--json', 'print JSON: an object, keyed as the API answers');

/** The error an HTTP refusal (a status >= 400 read as a stream, or instead of an upgrade) means: the API's own message when it sent one. */
export async function refusal(response: IncomingMessage): Promise<CliError> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  let message = Buffer.concat(chunks).toString('utf8');
  try {
    message = (JSON.parse(message) as { error: { message: string } }).error.message;
  } catch {
    // not the API's error shape: the body as it came
  }
  return new CliError(`${response.statusCode}: ${response.statusCode === 401 ? `the API rejected the token: ${message}` : message}`);
}
