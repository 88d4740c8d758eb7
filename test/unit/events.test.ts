/**
 * The event history and /v1/events over a real socket, against a real controller on
 * the in-memory data plane: config changes made by a TCP client with a token and a
 * health transition, numbered and replayed from `since`, gaps, the `by` field, and
 * the log line being the event itself (read through pino's destination stream).
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import WebSocket from 'ws';
import { failing, SWITCH_CHECK } from './lib/switch-check.js';

// The schemas take their check types from the registry when they load: after switch-check's entry.
const { startModelDaemon, StaticNeighbours } = await import('../lib/model-daemon.js');
const { vipPath } = await import('../../control/cli/client.js');

const TOKEN = 'events-test-token-0123456789abcdef';
const FINGERPRINT = createHash('sha256').update(TOKEN).digest('hex').slice(0, 12);
const KEY = { protocol: 'tcp', address: '198.19.0.1', port: 80 };
const VIP = vipPath('tcp', '198.19.0.1', 80);
const BACKEND = vipPath('tcp', '198.19.0.1', 80, '198.18.0.11');
const CHECK = { type: SWITCH_CHECK, intervalMs: 100, timeoutMs: 100, rise: 1, fall: 1 };

type Message = Record<string, unknown> & { type: string; id?: number };

let d: Awaited<ReturnType<typeof startModelDaemon>>;
let base: string;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  failing.clear();
  await d?.close();
});

async function start(options: Parameters<typeof startModelDaemon>[0] = {}) {
  // The backend's MAC is known: a dsr probe through the VIP waits for it.
  const neighbours = new StaticNeighbours();
  neighbours.macs.set('198.18.0.11', Buffer.from('02aabbccdd11', 'hex'));
  d = await startModelDaemon({ token: TOKEN, neighbours, ...options });
  base = await d.app.listen({ host: '127.0.0.1', port: 0 });
}

const send = (method: string, path: string, body?: unknown) =>
  fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** A WebSocket on /v1/events and the messages it has received, stats ticks left out. */
async function follow(query = ''): Promise<Message[]> {
  const socket = new WebSocket(`${base.replace('http', 'ws')}/v1/events${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  sockets.push(socket);
  const messages: Message[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as Message;
    if (message.type !== 'stats') messages.push(message);
  });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return messages;
}

/** The changes of the test, each awaited; the health transition in the middle. */
async function makeChanges() {
  expect((await send('PUT', VIP, { forwarding: 'ipip', panicThreshold: 0, healthCheck: CHECK })).status).toBe(201);
  expect((await send('PUT', VIP, { forwarding: 'dsr', panicThreshold: 0, healthCheck: CHECK })).status).toBe(200);
  expect((await send('PUT', BACKEND, { weight: 3 })).status).toBe(201);
  failing.add('198.18.0.11');
  await expect.poll(() => d.controller.history.replay(0).some((e) => e.type === 'health' && e.to === 'down'), { timeout: 5000 }).toBe(true);
  expect((await send('PUT', BACKEND, { weight: 3, state: 'drain' })).status).toBe(200);
  expect((await send('DELETE', BACKEND)).status).toBe(204);
}

const by = { peer: '127.0.0.1', token: FINGERPRINT };
const EXPECTED_CONFIG = [
  {
    action: 'vip.put',
    vip: KEY,
    before: null,
    after: {
      forwarding: 'ipip',
      affinity: 'flow',
      conntrack: true,
      panicThreshold: 0,
      healthCheck: { ...CHECK, via: 'vip' },
      backends: [],
    },
    by,
  },
  { action: 'vip.put', vip: KEY, before: { forwarding: 'ipip' }, after: { forwarding: 'dsr' }, by },
  { action: 'backend.put', vip: KEY, backend: '198.18.0.11', before: null, after: { weight: 3, state: 'active' }, by },
  { action: 'backend.put', vip: KEY, backend: '198.18.0.11', before: { state: 'active' }, after: { state: 'drain' }, by },
  { action: 'backend.delete', vip: KEY, backend: '198.18.0.11', before: { weight: 3, state: 'drain' }, after: null, by },
].map((change) => ({ type: 'config', ...change }));

test('config changes and a health transition: numbered, replayed with since=0 as they went live, by whom, logged as the event', async () => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _, done) {
      lines.push(
        ...String(chunk)
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      );
      done();
    },
  });
  await start({ log: pino({ level: 'info' }, destination) });
  const live = await follow();
  await makeChanges();

  const replayed = await follow('?since=0');
  await expect.poll(() => replayed.length).toBeGreaterThanOrEqual(7);
  expect(replayed.map((e) => e.id)).toEqual(replayed.map((_, i) => i + 1));
  expect(replayed.filter((e) => e.type === 'config').map(({ id: _, at: __, ...rest }) => rest)).toEqual(EXPECTED_CONFIG);
  // The transition comes between the backend's creation and its drain, with the check's reason and latency.
  const order = replayed.map((e) => (e.type === 'health' ? `health ${String(e.to)}` : `${e.type} ${String(e.action)}`));
  const down = order.indexOf('health down');
  expect(down).toBeGreaterThan(order.indexOf('config backend.put'));
  expect(down).toBeLessThan(order.lastIndexOf('config backend.put'));
  expect(replayed[down]).toMatchObject({
    vip: KEY,
    backend: '198.18.0.11',
    via: 'vip',
    to: 'down',
    reason: 'switched off through dsr to 198.18.0.11',
    latencyMs: expect.any(Number),
  });
  for (const event of replayed) expect(Date.parse(String(event.at))).not.toBeNaN();
  expect(JSON.stringify(replayed)).not.toContain(TOKEN);

  // The live stream carried the same events, ids and all; each log line is the event.
  await expect.poll(() => live.length).toBe(replayed.length);
  expect(live).toEqual(replayed);
  const logged = lines.map(({ level: _, time: __, pid: ___, hostname: ____, msg: _____, ...event }) => event);
  expect(logged).toEqual(replayed);
});

test('since: only later events; beyond the last id or older than the oldest kept, a gap first', async () => {
  await start();
  await makeChanges();
  const last = d.controller.history.replay(0).length;

  const later = await follow('?since=3');
  await expect.poll(() => later.length).toBe(last - 3);
  expect(later.map((e) => e.id)).toEqual(Array.from({ length: last - 3 }, (_, i) => i + 4));

  // Ids of an earlier daemon: everything kept, after a gap saying so.
  const restarted = await follow('?since=99999');
  await expect.poll(() => restarted.length).toBe(last + 1);
  expect(restarted[0]).toEqual({ type: 'gap', since: 99999, next: 1, reason: 'restarted' });
  expect(restarted.slice(1).map((e) => e.id)).toEqual(Array.from({ length: last }, (_, i) => i + 1));

  // Push the first events out of the history.
  const capacity = d.controller.history.capacity;
  for (let i = 0; i < capacity; i++) d.controller.publish({ type: 'link', iface: 'lo', attached: i % 2 === 0, reason: null });
  const evicted = await follow('?since=2');
  await expect.poll(() => evicted.length).toBe(capacity + 1);
  expect(evicted[0]).toEqual({ type: 'gap', since: 2, next: last + 1, reason: 'evicted' });
  expect(evicted[1]!.id).toBe(last + 1);
  expect(evicted.at(-1)!.id).toBe(last + capacity);

  // Without since: nothing replayed, the next event live.
  const fresh = await follow();
  expect((await send('DELETE', VIP)).status).toBe(204);
  await expect.poll(() => fresh).toEqual([expect.objectContaining({ id: last + capacity + 1, type: 'config', action: 'vip.delete', by })]);
});

test('a bad since is a 400 naming the field, before any upgrade', async () => {
  await start();
  for (const since of ['-1', 'abc', '01', '1.5', '']) {
    const socket = new WebSocket(`${base.replace('http', 'ws')}/v1/events?since=${since}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      socket.on('open', () => reject(new Error(`since=${since}: upgraded`)));
      socket.on('unexpected-response', (_, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += String(chunk)));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
    });
    expect(refused.status, since).toBe(400);
    expect(JSON.parse(refused.body).error).toMatchObject({
      code: 'invalid_request',
      details: [expect.objectContaining({ path: 'querystring.since' })],
    });
  }
});

test('request lines are at debug level: none at info, where the events are', async () => {
  await start();
  const { buildApp, loggerOptions } = await import('../../control/api/app.js');
  for (const level of ['info', 'debug'] as const) {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const app = await buildApp({ controller: d.controller, token: TOKEN, logger: loggerOptions(level, destination) });
    try {
      const headers = { authorization: `Bearer ${TOKEN}` };
      expect((await app.inject({ method: 'GET', url: '/v1/vips', headers })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/v1/nothing', headers })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
    const requests = lines.filter((line) => line.req !== undefined || line.res !== undefined);
    expect(requests.map((line) => line.level)).toEqual(level === 'info' ? [] : [20, 20, 20, 20]);
  }
});

test('the stream takes no messages from its client, cuts off a client that stops reading, and takes a bounded number', async () => {
  await start();
  const { MAX_EVENT_CLIENTS } = await import('../../control/api/events.js');
  const open = async () => {
    const socket = new WebSocket(`${base.replace('http', 'ws')}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
    sockets.push(socket);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return socket;
  };
  const closed = (socket: WebSocket) => new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  const subscribers = () => d.controller.listenerCount('event');
  const before = subscribers();

  // Any message closes the stream (policy violation); one over the size limit too, without being buffered.
  const talker = await open();
  const talkerClosed = closed(talker);
  talker.send('hello');
  expect(await talkerClosed).toBe(1008);
  const shouter = await open();
  const shouterClosed = closed(shouter);
  shouter.send(Buffer.alloc(64 * 1024));
  expect(await shouterClosed).toBe(1009);
  await expect.poll(subscribers).toBe(before);

  // A client that stops reading: once more than MAX_QUEUED_BYTES wait for it, it is cut off and unsubscribed.
  const stalled = await open();
  (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
  expect(subscribers()).toBe(before + 1);
  for (let i = 0; i < 400 && subscribers() > before; i++) {
    d.controller.publish({ type: 'shutdown', reason: 'x'.repeat(100_000) });
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(subscribers()).toBe(before);

  // Up to MAX_EVENT_CLIENTS at once; the next is told to try again later.
  const many = await Promise.all(Array.from({ length: MAX_EVENT_CLIENTS }, open));
  const extra = await open();
  expect(await closed(extra)).toBe(1013);
  for (const socket of many) socket.terminate();
});

test('a PATCH is its own action, with only what it changed', async () => {
  await start();
  expect((await send('PUT', VIP, { forwarding: 'dsr' })).status).toBe(201);
  expect((await send('PUT', BACKEND, { weight: 3 })).status).toBe(201);
  expect((await send('PATCH', BACKEND, { weight: 5 })).status).toBe(200);
  expect(d.controller.history.replay(0).at(-1)).toMatchObject({
    type: 'config',
    action: 'backend.patch',
    backend: '198.18.0.11',
    before: { weight: 3 },
    after: { weight: 5 },
    by,
  });
});
