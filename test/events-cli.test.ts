/**
 * `xlb events` as a real child process: against an in-process API on TCP with a token
 * (the events, their ids and who made them; a rejected token; no API), and against a
 * real `xlb serve` in a namespace, whose start summary tells pins made from pins
 * adopted and whose shutdown event names the signal and ends the command with 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { ApiClient, vipPath } from '../control/cli/client.js';
import { BALANCER_PINS } from '../control/dataplane/pins.js';
import { packagePath } from '../control/paths.js';
import { LAB, Lab } from '../scripts/lab/lab.js';
import { xlbCutShort } from './lib/cli.js';
import { type ModelDaemon, startModelDaemon } from './lib/model-daemon.js';

const CLI = packagePath('dist/control/cli/main.js');
const TOKEN = 'events-cli-token-0123456789abcdef';
const KEY = { protocol: 'tcp' as const, address: '198.19.0.1', port: 80 };

let work: string;
const children: ChildProcess[] = [];

/** `xlb events ...` running: the lines it printed so far, the same parsed (with --json), and its exit. */
function xlbEvents(...args: string[]) {
  const child = spawn(process.execPath, [CLI, 'events', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let pending = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (pending + String(chunk)).split('\n');
    pending = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }));
  return { lines, events: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>), exited };
}

/** A model daemon with the token, its API listening on a free TCP port of 127.0.0.1 (`api`, its --api). */
async function listeningDaemon(): Promise<{ d: ModelDaemon; api: string }> {
  const d = await startModelDaemon({ token: TOKEN });
  return { d, api: (await d.app.listen({ host: '127.0.0.1', port: 0 })).replace('http://', '') };
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'xlb-events-cli-'));
  writeFileSync(join(work, 'token'), TOKEN, { mode: 0o600 });
  writeFileSync(join(work, 'wrong-token'), 'not-the-token-but-long-enough', { mode: 0o600 });
});
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('against an API on TCP with a token', () => {
  let d: ModelDaemon;
  let api: string;
  let client: ApiClient;
  beforeAll(async () => {
    ({ d, api } = await listeningDaemon());
    client = new ApiClient(api, TOKEN);
  });
  afterAll(async () => d?.close());

  test('--json --since 0: the kept events, then live ones, by this client; the shutdown event ends it with 0', async () => {
    expect((await client.request('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip' })).status).toBe(201);
    expect((await client.request('PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'), { weight: 2 })).status).toBe(201);
    const { events, exited } = xlbEvents('--json', '--since', '0', '--api', api, '--token-file', join(work, 'token'));
    await expect.poll(() => events().length, { timeout: 10_000 }).toBe(2);
    // Live after the replay: the command is connected once the replay is printed.
    expect((await client.request('DELETE', vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'))).status).toBe(204);
    await expect.poll(() => events().length, { timeout: 10_000 }).toBe(3);

    const by = { peer: '127.0.0.1', token: createHash('sha256').update(TOKEN).digest('hex').slice(0, 12) };
    expect(events()).toEqual([
      expect.objectContaining({ id: 1, type: 'config', action: 'vip.put', vip: KEY, before: null, by }),
      expect.objectContaining({ id: 2, type: 'config', action: 'backend.put', after: { weight: 2, state: 'active' }, by }),
      expect.objectContaining({ id: 3, type: 'config', action: 'backend.delete', before: { weight: 2, state: 'active' }, after: null, by }),
    ]);

    // Without --json: a line each, saying what changed and who changed it.
    const human = xlbEvents('--since', '0', '--api', api, '--token-file', join(work, 'token'));
    await expect.poll(() => human.lines.length, { timeout: 10_000 }).toBe(3);
    expect(human.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^\\S+ #1 config vip\\.put tcp/198\\.19\\.0\\.1:80: created forwarding=ipip .* \\(by 127\\.0\\.0\\.1 token ${by.token}\\)$`,
        ),
      ),
      expect.stringMatching(/ #2 config backend\.put tcp\/198\.19\.0\.1:80 backend 198\.18\.0\.11: created weight=2 state=active /),
      expect.stringMatching(/ #3 config backend\.delete tcp\/198\.19\.0\.1:80 backend 198\.18\.0\.11: removed weight=2 state=active /),
    ]);

    d.controller.publish({ type: 'shutdown', reason: 'SIGTERM' });
    await d.app.close();
    expect(await exited).toEqual({ code: 0, stderr: '' });
    expect(events().at(-1)).toMatchObject({ id: 4, type: 'shutdown', reason: 'SIGTERM' });
    expect(await human.exited).toEqual({ code: 0, stderr: '' });
    expect(human.lines.at(-1)).toMatch(/ #4 shutting down: SIGTERM$/);
  });

  test('a rejected token and an API that is not there: exit 1 with the reason', async () => {
    const other = await startModelDaemon({ token: TOKEN });
    let otherApi: string;
    try {
      otherApi = (await other.app.listen({ host: '127.0.0.1', port: 0 })).replace('http://', '');
      const rejected = await xlbEvents('--api', otherApi, '--token-file', join(work, 'wrong-token')).exited;
      expect(rejected.code).toBe(1);
      expect(rejected.stderr).toBe('xlb: 401: the API rejected the token: a valid bearer token is required\n');
    } finally {
      await other.close();
    }
    // Nothing listens there any more.
    const unreachable = await xlbEvents('--api', otherApi, '--token-file', join(work, 'token')).exited;
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(new RegExp(`^xlb: cannot reach the API at ${otherApi}: ECONNREFUSED`));
  });
});

describe('against an API that keeps running', () => {
  let d: ModelDaemon;
  let api: string;
  beforeAll(async () => {
    ({ d, api } = await listeningDaemon());
    expect((await new ApiClient(api, TOKEN).request('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip' })).status).toBe(201);
  });
  afterAll(async () => d?.close());

  test("--since takes the API's event ids only, refused before connecting and naming the option", async () => {
    expect(await xlbEvents('--since', '9999999999999999', '--api', api, '--token-file', join(work, 'token')).exited).toEqual({
      code: 1,
      stderr: 'xlb: --since: an event id: decimal digits without sign or leading zeros: "9999999999999999"\n',
    });
    expect((await xlbEvents('--since', '-1', '--api', api, '--token-file', join(work, 'token')).exited).code).toBe(1);
  });

  test('a health line rounds the check latency to 0.1 ms', async () => {
    const human = xlbEvents('--since', '0', '--api', api, '--token-file', join(work, 'token'));
    // Connected once the replay is printed.
    await expect.poll(() => human.lines.length, { timeout: 10_000 }).toBeGreaterThan(0);
    d.controller.publish({
      type: 'health',
      vip: KEY,
      backend: '198.18.0.11',
      via: 'direct',
      from: 'unknown',
      to: 'down',
      reason: 'connection refused',
      latencyMs: 166.79226600000038,
    });
    await expect.poll(() => human.lines.at(-1), { timeout: 10_000 }).toMatch(/: unknown -> down \(connection refused; check 166\.8 ms\)$/);
  });

  test('a reader that goes away (| head -1) ends it with 141 and nothing on stderr', async () => {
    const { first, code, stderr } = await xlbCutShort(
      ['events', '--since', '0', '--api', api, '--token-file', join(work, 'token')],
      async () => d.controller.publish({ type: 'link', iface: 'lo', attached: true, reason: null }),
    );
    expect(first).toMatch(/ #1 config /);
    expect({ code, stderr }).toEqual({ code: 141, stderr: '' });
  });

  test("a daemon with its most event clients: the daemon's reason, and to try again later", async () => {
    const held: WebSocket[] = [];
    try {
      // Other tests' clients may still hold slots: take the rest until the daemon refuses one.
      for (;;) {
        const socket = new WebSocket(`ws://${api}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
        held.push(socket);
        await once(socket, 'open');
        const refused = await Promise.race([
          once(socket, 'close').then(([code]) => code === 1013),
          new Promise<false>((resolve) =>
            socket
              .once('message', () => resolve(false))
              .once('pong', () => resolve(false))
              .ping(),
          ),
        ]);
        if (refused) break;
      }
      expect(await xlbEvents('--api', api, '--token-file', join(work, 'token')).exited).toEqual({
        code: 1,
        stderr: 'xlb: the daemon closed the event stream (code 1013: more than 64 event clients; try again later)\n',
      });
    } finally {
      for (const socket of held) socket.terminate();
    }
  });
});

describe('against xlb serve', () => {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = await Lab.create('evc', {}, (started) => (lab = started));
  });
  afterAll(() => lab?.destroy());

  test('the start summary (pins made, then adopted; what was restored), attach, and shutdown with its signal', async () => {
    const { socket, state } = lab!.lbPaths();
    const api = `unix:${socket}`;
    let daemon = await lab!.startDaemon();
    const first = xlbEvents('--json', '--since', '0', '--api', api);
    await expect.poll(() => first.events().map((e) => e.type), { timeout: 10_000 }).toEqual(['start', 'link']);
    expect(first.events()[0]).toMatchObject({
      id: 1,
      iface: 'eth0',
      store: `state file ${state}`,
      vips: 0,
      backends: 0,
      pins: { adopted: [], created: [...BALANCER_PINS] },
    });
    expect(first.events()[1]).toMatchObject({ id: 2, type: 'link', iface: 'eth0', attached: true, reason: null });
    expect((await daemon.api.request('PUT', vipPath('tcp', LAB.vip4, 80), { forwarding: 'ipip' })).status).toBe(201);
    expect((await daemon.api.request('PUT', vipPath('tcp', LAB.vip4, 80, LAB.backend4(1)), {})).status).toBe(201);
    await expect.poll(() => first.events().length, { timeout: 10_000 }).toBe(4);
    expect(
      first
        .events()
        .slice(2)
        .map((e) => e.by),
    ).toEqual([
      { peer: 'unix', token: null },
      { peer: 'unix', token: null },
    ]);

    await daemon.stop('SIGINT');
    expect(await first.exited).toEqual({ code: 0, stderr: '' });
    expect(first.events().at(-1)).toMatchObject({ id: 5, type: 'shutdown', reason: 'SIGINT' });

    daemon = await lab!.startDaemon();
    const second = xlbEvents('--json', '--since', '0', '--api', api);
    await expect.poll(() => second.events().map((e) => e.type), { timeout: 10_000 }).toEqual(['start', 'link']);
    expect(second.events()[0]).toMatchObject({ id: 1, vips: 1, backends: 1, pins: { adopted: [...BALANCER_PINS], created: [] } });
    await daemon.stop();
    expect(await second.exited).toEqual({ code: 0, stderr: '' });
    expect(second.events().at(-1)).toMatchObject({ type: 'shutdown', reason: 'SIGTERM' });
  });
});
