/** Security: TLS, mutation rate limits, token and state file modes, tokens kept out of logs. */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, loggerOptions } from '../control/api/app.js';
import { ApiClient, vipPath } from '../control/cli/client.js';
import { packagePath } from '../control/paths.js';
import { readTokenFile } from '../control/token-file.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';

let dir: string;
let d: TestDaemon;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xlb-security-'));
  d = await startTestDaemon();
});
afterAll(async () => {
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  test('the API serves HTTPS with the given certificate; clients trust it with --ca-file', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const app = await buildApp({ controller: d.controller, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as { port: number }).port;
      const trusted = await new ApiClient(`https://127.0.0.1:${port}`, undefined, readFileSync(cert)).request('GET', '/v1/status');
      expect(trusted.status).toBe(200);
      await expect(new ApiClient(`https://127.0.0.1:${port}`).request('GET', '/v1/status')).rejects.toThrow(/self-signed|self signed/);
      await expect(new ApiClient(`127.0.0.1:${port}`).request('GET', '/v1/status')).rejects.toThrow();
    } finally {
      await app.close();
    }
  });
});

describe('rate limit on changes', () => {
  test('beyond the limit a change gets 429 in the error shape and changes nothing; reads stay free', async () => {
    const app = await buildApp({ controller: d.controller, mutationsPerMinute: 3 });
    try {
      for (let port = 1; port <= 3; port++) {
        expect(
          (await app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.9', port), payload: { forwarding: 'ipip' } })).statusCode,
        ).toBe(201);
      }
      const state = d.stateText();
      const limited = await app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.9', 4), payload: { forwarding: 'ipip' } });
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/more than 3 changes/) });
      expect(d.stateText()).toBe(state);
      expect((await app.inject({ method: 'GET', url: '/v1/vips' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('secrets', () => {
  test('the state file is 0600', async () => {
    expect((await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.8', 80), payload: { forwarding: 'ipip' } })).statusCode).toBe(
      201,
    );
    expect(statSync(d.statePath).mode & 0o777).toBe(0o600);
  });

  test('xlb serve refuses a token file others can read, and a short token', () => {
    const token = join(dir, 'token');
    const serve = () => refusedServe('--token-file', token);
    writeFileSync(token, 'a-long-enough-secret-token\n');
    chmodSync(token, 0o644);
    expect(serve()).toMatch(/token file .* is readable by others \(mode 644\); chmod 600 it/);
    writeFileSync(token, 'short\n');
    chmodSync(token, 0o600);
    expect(serve()).toMatch(/the token must be at least 16 characters/);
  });

  test.each([
    ['a NUL', 'a-long-enough-secret\0token\n'],
    ['a space', 'a-long-enough secret-token\n'],
    ['a second line', 'a-long-enough-secret-token\nsecond-line-of-the-token\n'],
    ['a = inside', 'a-long-enough=secret-token\n'],
  ])('xlb serve refuses a token with %s, naming the file and the rule', (_, text) => {
    const token = join(dir, 'token-bad');
    writeFileSync(token, text, { mode: 0o600 });
    expect(refusedServe('--token-file', token)).toContain(
      `token file ${token}: the token must be one line of letters, digits and -._~+/ with optional trailing = (RFC 6750 b64token)`,
    );
  });

  test('a token of every b64token character, with = padding, is read as it is', async () => {
    const token = join(dir, 'token-good');
    const secret = 'AZaz09-._~+/padded==';
    writeFileSync(token, `${secret}\n`, { mode: 0o600 });
    expect(readTokenFile(token, { private: true })).toBe(secret);
  });

  test('a bearer token sent with requests never appears in the logs', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const secret = 'never-log-this-token-0123456789';
    const app = await buildApp({
      controller: d.controller,
      token: secret,
      logger: loggerOptions('trace', stream),
    });
    try {
      await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${secret}` } });
      await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: 'Bearer wrong-token-also-secret' } });
      await app.inject({
        method: 'PUT',
        url: vipPath('tcp', '198.19.0.1', 80),
        payload: { forwarding: 'bogus' },
        headers: { authorization: `Bearer ${secret}` },
      });
      await app.inject({ method: 'GET', url: `/v1/events?access_token=${secret}` });
    } finally {
      await app.close();
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(secret);
    expect(lines.join('')).not.toContain('wrong-token-also-secret');
  });
});

describe('files xlb reads must be regular files', () => {
  test.each([
    ['a FIFO state file', 'state', (at: string) => mkfifo(at), '--state', /state file .*: not a regular file \(a FIFO\)/],
    [
      'a state file that links to /dev/zero',
      'state-zero',
      (at: string) => symlinkSync('/dev/zero', at),
      '--state',
      /state file .*: not a regular file \(a character device\)/,
    ],
    ['a FIFO token file', 'token-fifo', (at: string) => mkfifo(at), '--token-file', /token file .*: not a regular file \(a FIFO\)/],
    ['a FIFO config file', 'config-fifo', (at: string) => mkfifo(at), '--config', /config file .*: not a regular file \(a FIFO\)/],
  ])('%s is refused at once', (_, name, make, flag, message) => {
    const path = join(dir, name);
    make(path);
    expect(refusedServe(flag, path)).toMatch(message);
  });

  test('a file over its bound is refused, naming the bound', () => {
    const config = join(dir, 'big.yaml');
    writeFileSync(config, `# ${'x'.repeat(1024 * 1024)}\n`);
    expect(refusedServe('--config', config)).toContain(`config file ${config}: larger than 1 MiB`);
  });
});

const mkfifo = (path: string) => execFileSync('mkfifo', ['-m', '600', path]);

/** The stderr of an `xlb serve` that must fail; a serve still running after 10 s is killed and fails the test. */
function refusedServe(...flags: string[]): string {
  const args = [
    'serve',
    '--iface',
    'lo',
    '--api',
    `unix:${join(dir, 'api.sock')}`,
    '--state',
    join(dir, 's.json'),
    '--bpffs',
    '/sys/fs/bpf/xlb-never',
    ...flags,
  ];
  try {
    execFileSync(process.execPath, [packagePath('dist/control/cli/main.js'), ...args], {
      stdio: 'pipe',
      timeout: 10_000,
      killSignal: 'SIGKILL',
    });
  } catch (error) {
    const failure = error as { stderr: Buffer; signal: string | null };
    expect(failure.signal).toBeNull();
    return String(failure.stderr);
  }
  throw new Error('xlb serve started');
}
