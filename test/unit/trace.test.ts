/**
 * Trace without a kernel: the frames a flow makes (pure), the endpoints and frames the
 * API takes (each refusal naming its field), a daemon on the in-memory data plane
 * answering 503 rather than guessing, and the limits of POST /v1/trace: its body takes
 * its most packets at their largest, and each client's traced packets a minute are capped.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { traceTable } from '../../control/cli/trace-command.js';
import { TraceBudget, TRACED_PACKETS_PER_MINUTE } from '../../control/trace/budget.js';
import { flowFrame } from '../../control/trace/frame.js';
import { flowSchema, MAX_FRAME_BYTES, MAX_TRACE_PACKETS, parseEndpoint } from '../../control/trace/schema.js';
import type { DryRunner } from '../../control/trace/tracer.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';
import { ETH_P_IP, ETH_P_IPV6, l4ChecksumOk, parseEthernet, parseIp, PROTO } from '../lib/packet.js';

const MAC = Buffer.from([2, 0, 0, 0, 0, 2]);
const frameOf = (protocol: 'tcp' | 'udp' | 'icmp', source: string, destination: string) =>
  flowFrame(flowSchema.parse({ protocol, source, destination }), MAC);

describe('the frame of a flow', () => {
  test.each([
    ['tcp', '203.0.113.7:41000', '198.51.100.10:80', ETH_P_IP, PROTO.TCP],
    ['udp', '[2001:db8::7]:41000', '[2001:db8::10]:53', ETH_P_IPV6, PROTO.UDP],
    ['icmp', '203.0.113.7', '198.51.100.10', ETH_P_IP, PROTO.ICMP],
    ['icmp', '2001:db8::7', '2001:db8::10', ETH_P_IPV6, PROTO.ICMPV6],
  ] as const)('%s %s > %s: to the interface MAC, valid checksums, the ports given', (protocol, source, destination, etherType, proto) => {
    const ethernet = parseEthernet(frameOf(protocol, source, destination));
    expect([ethernet.dst, ethernet.etherType]).toEqual(['02:00:00:00:00:02', etherType]);
    const ip = parseIp(ethernet.payload);
    expect([ip.protocol, ip.headerChecksumOk, l4ChecksumOk(ip)]).toEqual([proto, true, true]);
    if (protocol === 'icmp')
      expect(ip.payload[0]).toBe(etherType === ETH_P_IP ? 8 : 128); // echo request
    else expect([ip.payload.readUInt16BE(0), ip.payload.readUInt16BE(2)]).toEqual([41000, protocol === 'tcp' ? 80 : 53]);
    if (protocol === 'tcp') expect(ip.payload[13]).toBe(0x02); // SYN
  });

  test.each([
    ['203.0.113.7:41000', true, { address: '203.0.113.7', port: 41000 }],
    ['[2001:DB8::7]:0', true, { address: '2001:db8::7', port: 0 }],
    ['2001:db8::7', false, { address: '2001:db8::7', port: null }],
    ['203.0.113.7', true, 'expected ADDRESS:PORT or [IPV6]:PORT'],
    ['2001:db8::7:80', true, 'expected ADDRESS:PORT or [IPV6]:PORT'],
    ['203.0.113.7:65536', true, 'port 65536 is over 65535'],
    ['203.0.113.7:080', true, 'expected ADDRESS:PORT or [IPV6]:PORT'],
    ['host.example:80', true, 'not an IPv4 or IPv6 address: "host.example"'],
  ] as const)('endpoint %s (ports: %s)', (text, withPort, expected) => {
    expect(parseEndpoint(text, withPort)).toEqual(expected);
  });
});

describe('/v1/trace on a daemon without a kernel data plane', () => {
  let d: ModelDaemon;
  beforeAll(async () => {
    d = await startModelDaemon();
  });
  afterAll(async () => d.close());

  const query = (params: Record<string, string>) => `/v1/trace?${new URLSearchParams(params).toString()}`;

  test('a valid flow or frame: 503, trace needs the kernel data plane', async () => {
    const flow = await d.app.inject({
      method: 'GET',
      url: query({ protocol: 'tcp', source: '203.0.113.7:41000', destination: '198.51.100.10:80' }),
    });
    expect(flow.statusCode).toBe(503);
    expect(flow.json().error).toMatchObject({ code: 'dataplane_unavailable', message: expect.stringContaining('kernel data plane') });
    const frame = await d.app.inject({ method: 'POST', url: '/v1/trace', payload: { packets: [{ frame: '02'.repeat(60) }] } });
    expect(frame.statusCode).toBe(503);
  });

  test.each([
    [query({ protocol: 'tcp', source: 'nonsense', destination: '198.51.100.10:80' }), 'querystring.source'],
    [query({ protocol: 'tcp', source: '203.0.113.7:1', destination: '[2001:db8::1]:80' }), 'querystring.destination'],
    [query({ protocol: 'sctp', source: '203.0.113.7:1', destination: '198.51.100.10:80' }), 'querystring.protocol'],
    [query({ protocol: 'udp', source: '203.0.113.7:1' }), 'querystring.destination'],
  ])('GET %s: 400 naming %s', async (url, path) => {
    const response = await d.app.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.map((detail: { path: string }) => detail.path)).toContain(path);
  });

  test.each([
    [{ packets: [{ frame: 'zz' }] }, 'body.packets.0.frame'],
    [{ packets: [{ frame: '0200' }] }, 'body.packets.0.frame'],
    [{ packets: [{ protocol: 'tcp', source: '203.0.113.7:1' }] }, 'body.packets.0.destination'],
    [{ packets: [{ frame: '02'.repeat(60), protocol: 'tcp' }] }, 'body.packets.0.frame'],
    [{ packets: [] }, 'body.packets'],
    [{}, 'body.packets'],
  ])('POST %j: 400 naming %s', async (payload, path) => {
    const response = await d.app.inject({ method: 'POST', url: '/v1/trace', payload });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.map((detail: { path: string }) => detail.path)).toContain(path);
  });
});

describe('the traced-packet budget', () => {
  test("counts packets per client and minute; a request over what is left is refused whole; the minute's end frees it", () => {
    let now = 1_000_000;
    const budget = new TraceBudget(10, () => now);
    expect(budget.take('a', 8)).toBeNull();
    expect(budget.take('b', 10)).toBeNull();
    expect(budget.take('a', 3)).toEqual({ perMinute: 10, traced: 8, retryAfterSeconds: 60 });
    expect(budget.take('a', 2)).toBeNull();
    now += 59_500;
    expect(budget.take('a', 1)).toEqual({ perMinute: 10, traced: 10, retryAfterSeconds: 1 });
    now += 500;
    expect(budget.take('a', 10)).toBeNull();
  });
});

describe('/v1/trace limits, on a dry run that passes every frame (standing in for the kernel)', () => {
  let d: ModelDaemon;
  const passEverything: DryRunner = (frame) => ({
    verdict: 'pass',
    outcome: 'pass_not_vip',
    vip: null,
    table: null,
    ring: null,
    output: frame,
  });
  beforeAll(async () => {
    d = await startModelDaemon({ dryRun: passEverything });
  });
  afterAll(async () => d.close());
  const post = (packets: object[]) => d.app.inject({ method: 'POST', url: '/v1/trace', payload: { packets } });

  test(`${MAX_TRACE_PACKETS} frames of the largest size fit the body limit; one more is refused naming body.packets`, async () => {
    const largest = { frame: 'ab'.repeat(MAX_FRAME_BYTES) };
    const full = await post(Array<object>(MAX_TRACE_PACKETS).fill(largest));
    expect(full.statusCode).toBe(200);
    expect(full.json().traces).toHaveLength(MAX_TRACE_PACKETS);
    const over = await post(Array<object>(MAX_TRACE_PACKETS + 1).fill(largest));
    expect(over.statusCode).toBe(400);
    expect(over.json().error.details).toContainEqual({ path: 'body.packets', message: expect.stringContaining(String(MAX_TRACE_PACKETS)) });
  });

  test(`past ${TRACED_PACKETS_PER_MINUTE} traced packets a minute a client is refused: 429 naming the limit`, async () => {
    const fresh = await startModelDaemon({ dryRun: passEverything });
    try {
      const flows = Array<object>(MAX_TRACE_PACKETS).fill({
        protocol: 'tcp',
        source: '203.0.113.7:41000',
        destination: '198.51.100.10:80',
      });
      for (let traced = 0; traced < TRACED_PACKETS_PER_MINUTE; traced += MAX_TRACE_PACKETS) {
        const response = await fresh.app.inject({ method: 'POST', url: '/v1/trace', payload: { packets: flows } });
        expect(response.statusCode).toBe(200);
      }
      const next = await fresh.app.inject({
        method: 'GET',
        url: '/v1/trace?protocol=udp&source=203.0.113.7:41000&destination=198.51.100.10:53',
      });
      expect(next.statusCode).toBe(429);
      expect(next.json().error).toMatchObject({
        code: 'rate_limited',
        message: expect.stringContaining(`more than ${TRACED_PACKETS_PER_MINUTE} traced packets a minute`),
      });
      expect(Number(next.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await fresh.close();
    }
  });
});

test('xlb trace names an IPv6 VIP with its address in brackets', () => {
  const text = traceTable({
    verdict: 'drop',
    outcome: 'drop_no_backend',
    vip: { protocol: 'tcp', address: '2001:db8:f::1', port: 80, forwarding: 'dsr', conntrack: true },
    table: null,
    ring: null,
    backend: null,
    output: null,
  });
  expect(text).toMatch(/^vip +tcp\/\[2001:db8:f::1\]:80 \(dsr\)$/m);
});

test("xlb trace names a hit's state, and says when the table keeps a flow the ring now sends elsewhere", () => {
  const backend = (id: number, address: string) => ({
    id,
    address,
    weight: 1,
    state: 'active' as const,
    health: 'up' as const,
    healthReason: null,
    inRing: true,
    slots: 100,
  });
  const hit = {
    verdict: 'tx' as const,
    outcome: 'tx_dsr' as const,
    vip: { protocol: 'tcp', address: '198.51.100.10', port: 80, forwarding: 'dsr', conntrack: true },
    table: { result: 'hit' as const, backend: backend(1, '10.0.0.11'), state: 'established' as const },
    ring: { hash: 1, slot: 1, backend: backend(2, '10.0.0.12') },
    backend: backend(1, '10.0.0.11'),
    output: null,
  };
  const moved = traceTable(hit);
  expect(moved).toMatch(/^table +hit \(established\): 10\.0\.0\.11 /m);
  expect(moved).toMatch(/the table keeps the flow on its backend; the ring now gives its slot to another/);
  expect(traceTable({ ...hit, ring: { ...hit.ring, backend: backend(1, '10.0.0.11') } })).not.toMatch(/the table keeps/);
});
