/** The udp health check against real UDP sockets on loopback, and the options the VIP schema takes for it. */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, test } from 'vitest';
import { type CheckSpec, probe } from '../../control/health/checker.js';
import { resolveCheck } from '../../control/checks/registry.js';
import { emptyState, putVip } from '../../control/state/desired.js';
import { type VipKey, vipSpecSchema } from '../../control/state/schema.js';

/** What a test server received: the payload and the peer's port. */
interface Received {
  payload: Buffer;
  port: number;
}

const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

/** A UDP socket bound on loopback that answers each datagram with `answer(payload)` (no answer for null) from `replier` (itself by default). */
async function server(
  family: 'udp4' | 'udp6',
  answer: (payload: Buffer) => Buffer | null,
  replier?: dgram.Socket,
): Promise<{ port: number; received: Received[] }> {
  const socket = await bound(family);
  const received: Received[] = [];
  socket.on('message', (payload, peer) => {
    received.push({ payload, port: peer.port });
    const reply = answer(payload);
    if (reply) (replier ?? socket).send(reply, peer.port, peer.address);
  });
  return { port: socket.address().port, received };
}

async function bound(family: 'udp4' | 'udp6'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(family);
  sockets.push(socket);
  socket.bind(0, family === 'udp4' ? '127.0.0.1' : '::1');
  await once(socket, 'listening');
  return socket;
}

const spec = (o: Partial<CheckSpec>): CheckSpec => ({
  type: 'udp',
  address: '127.0.0.1',
  port: 1,
  via: 'direct',
  backend: '127.0.0.1',
  forwarding: 'dsr',
  intervalMs: 100,
  timeoutMs: 300,
  rise: 1,
  fall: 1,
  send: 'ping',
  ...o,
});

/** UDP sockets this process holds open (a closed one leaves the list a little after close()). */
const openUdpSockets = () => process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;

/** Resolves once `done` holds, polled; fails after a second. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 1000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The probe's result and how long it took; the probe leaves no socket open behind it. */
async function timed(check: CheckSpec): Promise<{ reason: string | null; ms: number }> {
  const start = performance.now();
  const reason = await probe(check);
  const ms = performance.now() - start;
  await until(() => openUdpSockets() === sockets.length, `only the test's own sockets open (${openUdpSockets()}, not ${sockets.length})`);
  return { reason, ms };
}

const echo = (payload: Buffer) => Buffer.concat([Buffer.from('pong '), payload]);

describe('udp probe', () => {
  test.each([
    ['udp4', '127.0.0.1'],
    ['udp6', '::1'],
  ] as const)('%s: any reply is healthy, and the payload arrives as given', async (family, address) => {
    const { port, received } = await server(family, echo);
    expect((await timed(spec({ address, port, send: 'ping é' }))).reason).toBeNull();
    expect((await timed(spec({ address, port, send: undefined, sendHex: '00ff10' }))).reason).toBeNull();
    expect(received.map((r) => r.payload.toString('hex'))).toEqual([Buffer.from('ping é').toString('hex'), '00ff10']);
  });

  test('expect: a reply containing the bytes is healthy, one without them fails showing what came', async () => {
    const { port } = await server('udp4', echo);
    expect((await timed(spec({ port, expect: 'ng pi' }))).reason).toBeNull();
    expect((await timed(spec({ port, expectHex: Buffer.from('ping').toString('hex') }))).reason).toBeNull();
    expect((await timed(spec({ port, expect: 'PONG' }))).reason).toBe(
      `direct to 127.0.0.1: reply did not contain the expected bytes (got 9 bytes: ${Buffer.from('pong ping').toString('hex')})`,
    );
    const long = 'x'.repeat(40);
    expect((await timed(spec({ port, send: long, expectHex: 'ff' }))).reason).toBe(
      `direct to 127.0.0.1: reply did not contain the expected bytes (got 45 bytes: ${Buffer.from(`pong ${long}`).toString('hex').slice(0, 32)}…)`,
    );
  });

  test('no answer within the timeout fails after the timeout', async () => {
    const { port, received } = await server('udp4', () => null);
    const { reason, ms } = await timed(spec({ port, timeoutMs: 150 }));
    expect(reason).toBe('direct to 127.0.0.1: no answer in 150 ms');
    expect(ms).toBeGreaterThanOrEqual(145);
    expect(received).toHaveLength(1);
  });

  test('a reply from another port of the target does not count', async () => {
    const other = await bound('udp4');
    const { port, received } = await server('udp4', echo, other);
    expect((await timed(spec({ port, timeoutMs: 150 }))).reason).toBe('direct to 127.0.0.1: no answer in 150 ms');
    expect(received).toHaveLength(1);
  });

  test.each([
    ['udp4', '127.0.0.1'],
    ['udp6', '::1'],
  ] as const)('%s: nothing listening fails at once as port unreachable, not by the timeout', async (family, address) => {
    const closed = await bound(family);
    const port = closed.address().port;
    closed.close();
    sockets.splice(sockets.indexOf(closed), 1);
    const { reason, ms } = await timed(spec({ address, backend: address, port, timeoutMs: 5000 }));
    expect(reason).toBe(`direct to ${address}: port unreachable`);
    expect(ms).toBeLessThan(1000);
  });

  test('localPort: the probe leaves from that port', async () => {
    const { port, received } = await server('udp4', echo);
    const free = await bound('udp4');
    const localPort = free.address().port;
    free.close();
    sockets.splice(sockets.indexOf(free), 1);
    expect((await timed(spec({ port, localPort }))).reason).toBeNull();
    expect((await timed(spec({ port }))).reason).toBeNull();
    expect(received.map((r) => r.port === localPort)).toEqual([true, false]);
  });

  test('a localPort another socket holds exclusively fails naming the error', async () => {
    const holder = await bound('udp4');
    const { port } = await server('udp4', echo);
    expect((await timed(spec({ port, localPort: holder.address().port }))).reason).toBe('direct to 127.0.0.1: udp: EADDRINUSE');
  });
});

const LONE_SURROGATE = 'not well-formed UTF-16, so it has no UTF-8 bytes (give bytes as hex instead)';

describe('udp check options', () => {
  const issues = (healthCheck: Record<string, unknown>) =>
    vipSpecSchema.safeParse({ forwarding: 'dsr', healthCheck }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

  test.each([
    [{}, 'healthCheck.send: a udp check needs a payload: send (text) or sendHex'],
    [{ send: 'a', sendHex: '00' }, 'healthCheck.sendHex: give the payload as send (text) or sendHex, not both'],
    [{ send: '' }, 'healthCheck.send: must not be empty'],
    [{ sendHex: '' }, 'healthCheck.sendHex: must not be empty'],
    [{ send: 'é'.repeat(701) }, 'healthCheck.send: 1402 bytes: at most 1400 fit one probe datagram'],
    [{ sendHex: '00'.repeat(1401) }, 'healthCheck.sendHex: 1401 bytes: at most 1400 fit one probe datagram'],
    [{ sendHex: '0a0' }, 'healthCheck.sendHex: 3 hex digits: a byte is two, so the count must be even'],
    [{ sendHex: '0a 0b' }, 'healthCheck.sendHex: " " at position 2 is not a hex digit'],
    [{ sendHex: '0x0a' }, 'healthCheck.sendHex: "x" at position 1 is not a hex digit'],
    [{ send: 'a', expectHex: 'zz' }, 'healthCheck.expectHex: "z" at position 0 is not a hex digit'],
    [{ send: 'a', expect: '' }, 'healthCheck.expect: must not be empty'],
    [{ send: 'a', expect: 'b', expectHex: '62' }, 'healthCheck.expectHex: give the expected bytes as expect (text) or expectHex, not both'],
    [{ send: 'a', expectStatus: 200 }, expect.stringMatching(/^healthCheck: "expectStatus": not an option of a udp check/)],
    [{ send: '\ud800' }, `healthCheck.send: U+D800 at position 0 is a lone surrogate: ${LONE_SURROGATE}`],
    [{ send: 'ok \ud83d' }, `healthCheck.send: U+D83D at position 3 is a lone surrogate: ${LONE_SURROGATE}`],
    [{ send: 'a', expect: '\ude00\ud83d' }, `healthCheck.expect: U+DE00 at position 0 is a lone surrogate: ${LONE_SURROGATE}`],
  ])('%j is refused naming the field', (options, message) => {
    expect(issues({ type: 'udp', ...options })).toEqual([message]);
  });

  test('the largest payload and upper-case hex are taken; the resolved check carries the options', () => {
    expect(issues({ type: 'udp', sendHex: 'AB'.repeat(1400), expectHex: 'ab' })).toBeUndefined();
    expect(issues({ type: 'udp', send: 'x'.repeat(1400) })).toBeUndefined();
    expect(issues({ type: 'udp', send: '\ud83d\ude00 ok', expect: '\u00e9' })).toBeUndefined();
    const { healthCheck } = vipSpecSchema.parse({ forwarding: 'dsr', healthCheck: { type: 'udp', sendHex: '00AB', expect: 'ok' } });
    expect(resolveCheck(healthCheck, '198.18.0.11', { address: '198.19.0.1', port: 53, forwarding: 'dsr' })).toEqual({
      ...spec({ address: '198.19.0.1', port: 53, via: 'vip', backend: '198.18.0.11', send: undefined, sendHex: '00AB', expect: 'ok' }),
      intervalMs: 2000,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
    });
  });
});

describe('udp checks on VIPs', () => {
  const limits = { maxVips: 16, maxBackends: 64 };
  const put = (key: VipKey, healthCheck: Record<string, unknown>) =>
    putVip(emptyState(), key, vipSpecSchema.parse({ forwarding: 'dsr', healthCheck }), limits).state.vips[0]?.healthCheck;
  const dns = { type: 'udp', sendHex: '0001', expectHex: '8180' };
  const stored = { ...dns, via: 'vip' };

  test('a UDP VIP takes a udp check on its own port; a TCP VIP takes one too (DNS and QUIC serve both transports on one port)', () => {
    expect(put({ protocol: 'udp', address: '198.19.0.1', port: 53 }, dns)).toEqual(stored);
    expect(put({ protocol: 'tcp', address: '198.19.0.1', port: 53 }, dns)).toEqual(stored);
    expect(put({ protocol: 'tcp', address: '198.19.0.1', port: 443 }, { ...dns, port: 8053 })).toEqual({ ...stored, port: 8053 });
  });

  const PORT_REQUIRED = 'required when the VIP takes any port (port 0): a udp check has no VIP port to default to';

  test('a VIP on any port needs the udp check port, as every probing check does', () => {
    expect(() => put({ protocol: 'udp', address: '198.19.0.1', port: 0 }, dns)).toThrow(
      expect.objectContaining({
        message: `body is invalid: body.healthCheck.port: ${PORT_REQUIRED}`,
        details: [{ path: 'body.healthCheck.port', message: PORT_REQUIRED }],
      }),
    );
    expect(put({ protocol: 'udp', address: '198.19.0.1', port: 0 }, { ...dns, port: 53 })).toEqual({ ...stored, port: 53 });
  });
});
