/**
 * The REST API contract through fastify's inject(), against a real controller on the
 * in-memory data plane: the paths and fields, what lands in the maps and the state
 * file, and a bad-input matrix where every rejection names the field and changes nothing.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { vipPath } from '../../control/cli/client.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

let d: ModelDaemon;

const put = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  d.app.inject({ method: 'PUT', url, payload: payload as object, headers });
const get = (url: string, headers: Record<string, string> = {}) => d.app.inject({ method: 'GET', url, headers });
const del = (url: string) => d.app.inject({ method: 'DELETE', url });

const VIP4 = vipPath('tcp', '198.19.0.1', 80);
const VIP6 = vipPath('udp', '2001:db8:f::1', 53);

describe('VIPs and backends', () => {
  beforeEach(async () => {
    d = await startModelDaemon();
  });
  afterEach(async () => d.close());

  test('create (201), replace (200), read, list and delete a VIP', async () => {
    const created = await put(VIP4, { forwarding: 'dsr' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      protocol: 'tcp',
      address: '198.19.0.1',
      port: 80,
      forwarding: 'dsr',
      affinity: 'flow',
      conntrack: true,
      panicThreshold: 0.5,
      healthCheck: { type: 'none' },
      backends: [],
    });
    const replaced = await put(VIP4, { forwarding: 'ipip', affinity: 'source-ip', conntrack: false, panicThreshold: 0.25 });
    expect(replaced.statusCode).toBe(200);
    expect((await get(VIP4)).json()).toMatchObject({ forwarding: 'ipip', affinity: 'source-ip', conntrack: false, panicThreshold: 0.25 });
    expect((await get('/v1/vips')).json().vips).toHaveLength(1);
    expect(d.dp.listVips()).toHaveLength(1);
    expect(d.dp.listVips()[0]!.vip).toMatchObject({ flags: 3, forwarding: 2 });

    expect((await del(VIP4)).statusCode).toBe(204);
    expect((await get(VIP4)).statusCode).toBe(404);
    expect(d.dp.listVips()).toHaveLength(0);
  });

  test('IPv6 VIPs in the path, written either way, are the same VIP', async () => {
    expect((await put(VIP6, { forwarding: 'ipip' })).statusCode).toBe(201);
    const long = vipPath('udp', '2001:0db8:000f:0:0:0:0:1', 53);
    expect((await put(long, { forwarding: 'ipip' })).statusCode).toBe(200);
    expect((await get(VIP6)).json().address).toBe('2001:db8:f::1');
  });

  test('backends: add (201), update (200), weight and state, ring membership, delete', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    const added = await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    expect(added.statusCode).toBe(201);
    expect(added.json().backends).toEqual([
      expect.objectContaining({ address: '198.18.0.11', weight: 1, state: 'active', health: 'up', inRing: true }),
    ]);
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: 3 });
    const drained = await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: 3, state: 'drain' });
    expect(drained.statusCode).toBe(200);
    const b12 = drained.json().backends.find((b: { address: string }) => b.address === '198.18.0.12');
    expect(b12).toMatchObject({ weight: 3, state: 'drain', inRing: false, reason: 'draining' });

    const id11 = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.backends[0]!.id;
    const vipId = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.id;
    expect(new Set(d.dp.getRing(vipId))).toEqual(new Set([id11]));

    expect((await del(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'))).statusCode).toBe(204);
    expect(d.dp.getRing(vipId)).toBeNull(); // only the drained one is left
    expect((await del(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'))).statusCode).toBe(404);
  });

  test('weights shape the ring in proportion', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'), { weight: 3 });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: 1 });
    const vip = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!;
    const ring = d.dp.getRing(vip.id)!;
    const heavy = ring.filter((id) => id === vip.backends[0]!.id).length;
    expect(heavy / ring.length).toBeCloseTo(0.75, 2);
  });

  test('a dsr backend without a resolvable MAC stays out of the ring, with the reason', async () => {
    await put(VIP4, { forwarding: 'dsr' });
    const res = await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.99'));
    expect(res.json().backends[0]).toMatchObject({ inRing: false, reason: 'MAC address not resolved', mac: null });
  });

  test('a dsr backend with a resolved MAC serves, its MAC in the view and in its record', async () => {
    d.neighbours.macs.set('198.18.0.11', Buffer.from([2, 0, 0, 0, 0, 0x11]));
    await put(VIP4, { forwarding: 'dsr' });
    const res = await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    expect(res.json().backends[0]).toMatchObject({ inRing: true, reason: null, mac: '02:00:00:00:00:11' });
    const id = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.backends[0]!.id;
    expect(d.dp.getBackend(id)?.mac.toString('hex')).toBe('020000000011');
  });

  test('stats and metrics carry what the data plane counted', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    const vip = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!;
    d.dp.count({ outcome: 'tx_ipip', vipId: vip.id, backendId: vip.backends[0]!.id, packets: 3, bytes: 180 });
    d.dp.flows = 2;
    d.dp.flowStates = { new: 2, established: 0, closing: 0 };
    const stats = (await get('/v1/stats')).json();
    expect(stats.vips[0]).toMatchObject({ packets: 3, bytes: 180, backends: [{ address: '198.18.0.11', packets: 3, bytes: 180 }] });
    expect(stats.outcomes.tx_ipip).toEqual({ packets: 3, bytes: 180 });
    const text = (await get('/metrics')).body;
    expect(text).toMatch(/^xlb_packets_total\{outcome="tx_ipip"\} 3$/m);
    expect(text).toMatch(/^xlb_vip_bytes_total\{protocol="tcp",address="198\.19\.0\.1",port="80"\} 180$/m);
    expect(text).toMatch(/^xlb_backend_packets_total\{protocol="tcp",address="198\.19\.0\.1",port="80",backend="198\.18\.0\.11"\} 3$/m);
    expect(text).toMatch(new RegExp(`^xlb_flow_table_slots ${d.dp.flowCapacity}$`, 'm'));
    expect(text).toMatch(/^xlb_flow_table_flows\{state="new"\} 2$/m);
  });

  test('the state file is written atomically with mode 0600 and survives a restart with its ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-persist-'));
    try {
      await d.close();
      d = await startModelDaemon({ dir });
      await put(VIP4, { forwarding: 'ipip', healthCheck: { type: 'tcp', intervalMs: 5000 } });
      await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'), { weight: 2 });
      await put(VIP6, { forwarding: 'ipip' });
      expect(statSync(d.statePath).mode & 0o777).toBe(0o600);
      const before = d.controller.snapshot();
      await d.close();

      d = await startModelDaemon({ dir });
      expect(d.controller.snapshot()).toEqual(before);
      const vip = (await get(VIP4)).json();
      expect(vip).toMatchObject({ forwarding: 'ipip', healthCheck: { type: 'tcp', intervalMs: 5000 } });
      expect(vip.backends[0]).toMatchObject({ address: '198.18.0.11', weight: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('status, stats, healthz, readyz and the OpenAPI document', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    const status = (await get('/v1/status')).json();
    expect(status).toMatchObject({
      version: 'test',
      interface: 'lo',
      xdpMode: 'generic',
      attached: false,
      ready: false,
      counts: { vips: 1 },
    });
    expect((await get('/readyz')).statusCode).toBe(503);
    d.controller.setAttached(true, null);
    expect((await get('/readyz')).statusCode).toBe(200);
    expect((await get('/healthz')).statusCode).toBe(200);
    const stats = (await get('/v1/stats')).json();
    expect(stats.vips[0]).toMatchObject({ protocol: 'tcp', address: '198.19.0.1', port: 80, packets: 0, packetsPerSecond: 0 });
    expect(stats.outcomes).toHaveProperty('tx_dsr');
    const openapi = (await get('/documentation/json')).json();
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/v1/status',
        '/v1/vips',
        '/v1/vips/{protocol}/{address}/{port}',
        '/v1/vips/{protocol}/{address}/{port}/backends/{backend}',
        '/v1/stats',
      ]),
    );
    // One object per check type, each with only its own options.
    const check =
      openapi.paths['/v1/vips/{protocol}/{address}/{port}'].put.requestBody.content['application/json'].schema.properties.healthCheck;
    const options = Object.fromEntries(
      check.oneOf.map((type: { properties: Record<string, { enum: string[] }> }) => [
        type.properties.type!.enum[0],
        Object.keys(type.properties),
      ]),
    );
    expect(options.tcp).not.toContain('path');
    expect(options.http).toEqual(expect.arrayContaining(['type', 'port', 'intervalMs', 'path', 'expectStatus']));
  });

  test('metrics are Prometheus text read from the maps', async () => {
    await put(VIP4, { forwarding: 'ipip' });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'));
    const text = (await get('/metrics')).body;
    expect(text).toMatch(/^# TYPE xlb_packets_total counter$/m);
    expect(text).toMatch(/^xlb_packets_total\{outcome="tx_dsr"\} 0$/m);
    expect(text).toMatch(/^xlb_backend_in_ring\{protocol="tcp",address="198\.19\.0\.1",port="80",backend="198\.18\.0\.11"\} 1$/m);
    expect(text).toMatch(/^xlb_vip_panic\{protocol="tcp",address="198\.19\.0\.1",port="80"\} 0$/m);
    expect(text).toContain(
      `\nxlb_build_info{version="${(await get('/v1/status')).json().version}",nodejs_version="${process.version}"} 1\n`,
    );
  });

  test('events: a config change arrives on the WebSocket', async () => {
    await d.app.ready();
    const ws = await d.app.injectWS('/v1/events');
    const message = new Promise<Record<string, unknown>>((resolve) =>
      ws.on('message', (data) => {
        const event = JSON.parse(String(data));
        if (event.type === 'config') resolve(event);
      }),
    );
    await put(VIP4, { forwarding: 'dsr' });
    expect(await message).toMatchObject({ type: 'config', action: 'vip.put', vip: { protocol: 'tcp', address: '198.19.0.1', port: 80 } });
    ws.terminate();
  });

  test('events: health transitions and the stats tick', async () => {
    await d.app.ready();
    const ws = await d.app.injectWS('/v1/events');
    const seen = (type: string) =>
      new Promise<Record<string, unknown>>((resolve) =>
        ws.on('message', (data) => {
          const event = JSON.parse(String(data));
          if (event.type === type) resolve(event);
        }),
      );
    const health = seen('health');
    const stats = seen('stats');
    // Whatever answers for 198.18.0.99:1 (if anything does), it is not status 599: unknown -> down.
    await put(VIP4, { forwarding: 'ipip', healthCheck: { type: 'http', port: 1, expectStatus: 599, intervalMs: 60_000, timeoutMs: 200 } });
    await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.99'));
    expect(await health).toMatchObject({
      vip: { address: '198.19.0.1', port: 80 },
      backend: '198.18.0.99',
      from: 'unknown',
      to: 'down',
      reason: expect.any(String),
    });
    expect(await stats).toMatchObject({ vips: [expect.objectContaining({ address: '198.19.0.1', packets: 0 })] });
    const text = (await get('/metrics')).body;
    expect(text).toMatch(
      /^xlb_backend_health\{protocol="tcp",address="198\.19\.0\.1",port="80",backend="198\.18\.0\.99",health="down"\} 1$/m,
    );
    ws.terminate();
  });
});

const auth = { authorization: 'Bearer a-long-enough-test-token' };
const authed = (method: 'PUT' | 'DELETE' | 'GET', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  d.app.inject({ method, url, payload: payload as object, headers: { ...auth, ...headers } });
const startWithToken = () => startModelDaemon({ token: 'a-long-enough-test-token', maxVips: 2 });

async function seed() {
  expect((await authed('PUT', VIP4, { forwarding: 'dsr' })).statusCode).toBe(201);
  expect((await authed('PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'))).statusCode).toBe(201);
  expect((await authed('PUT', VIP6, { forwarding: 'ipip' })).statusCode).toBe(201);
}

describe('bad input gets the right 4xx, names the field, and changes nothing', () => {
  // One daemon for the matrix: each case checks that it changed nothing, so the next starts from the same state.
  let matrix: ModelDaemon;
  beforeAll(async () => {
    d = matrix = await startWithToken();
    await seed();
  });
  afterAll(async () => matrix.close());
  beforeEach(() => {
    d = matrix;
  });

  type Case = [string, 'PUT' | 'DELETE' | 'GET', string, unknown, number, RegExp, Record<string, string>?];
  const cases: Case[] = [
    ['forwarding of the wrong type', 'PUT', VIP4, { forwarding: 5 }, 400, /body\.forwarding/],
    ['an unknown forwarding', 'PUT', VIP4, { forwarding: 'nat' }, 400, /body\.forwarding/],
    ['a missing forwarding', 'PUT', VIP4, {}, 400, /body\.forwarding/],
    ['an unknown field', 'PUT', VIP4, { forwarding: 'dsr', colour: 'red' }, 400, /colour/],
    ['an unknown health-check field', 'PUT', VIP4, { forwarding: 'dsr', healthCheck: { type: 'tcp', every: 1 } }, 400, /every/],
    [
      "another check type's option",
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'tcp', path: '/x', expectStatus: 404 } },
      400,
      /body\.healthCheck: "path", "expectStatus": not an option of a tcp check/,
    ],
    ['an unknown check type', 'PUT', VIP4, { forwarding: 'dsr', healthCheck: { type: 'icmp' } }, 400, /body\.healthCheck\.type/],
    ['a panic threshold over 1', 'PUT', VIP4, { forwarding: 'dsr', panicThreshold: 2 }, 400, /body\.panicThreshold/],
    [
      'a huge interval',
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'tcp', intervalMs: 1e15 } },
      400,
      /body\.healthCheck\.intervalMs/,
    ],
    ['a huge weight', 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: 1e20 }, 400, /body\.weight/],
    ['a negative weight', 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: -1 }, 400, /body\.weight/],
    ['a fractional weight', 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: 1.5 }, 400, /body\.weight/],
    ['a bad backend state', 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { state: 'paused' }, 400, /body\.state/],
    ['a bad VIP address', 'PUT', vipPath('tcp', '198.19.0.300', 80), { forwarding: 'dsr' }, 400, /params\.address/],
    ['a hostname for an address', 'PUT', vipPath('tcp', 'example.com', 80), { forwarding: 'dsr' }, 400, /params\.address/],
    ['a bad protocol', 'PUT', vipPath('sctp', '198.19.0.1', 80), { forwarding: 'dsr' }, 400, /params\.protocol/],
    ['a port over 65535', 'PUT', vipPath('tcp', '198.19.0.1', 70000), { forwarding: 'dsr' }, 400, /params\.port/],
    ['a port that is not a number', 'PUT', vipPath('tcp', '198.19.0.1', 'http'), { forwarding: 'dsr' }, 400, /params\.port/],
    ['a bad backend address', 'PUT', vipPath('tcp', '198.19.0.1', 80, 'not-an-ip'), {}, 400, /params\.backend/],
    [
      'a port-0 VIP with a check but no check port',
      'PUT',
      vipPath('tcp', '198.19.0.2', 0),
      { forwarding: 'dsr', healthCheck: { type: 'tcp' } },
      400,
      /^body is invalid: body\.healthCheck\.port: required when the VIP takes any port \(port 0\): a tcp check has no VIP port to default to \[\{"path":"body\.healthCheck\.port","message":"required when/,
    ],
    [
      'a path for a check that sends no probe',
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'none', via: 'vip' } },
      400,
      /^body is invalid: body\.healthCheck\.via: a none check sends no probe, so it has no path to choose/,
    ],
    ...(
      [
        ['send', { send: '\ud800' }],
        ['expect', { send: 'ping', expect: 'pong\udfff' }],
      ] as const
    ).map(([field, options]): Case => [
      `a lone surrogate in a udp check's ${field}`,
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'udp', ...options } },
      400,
      new RegExp(`^body is invalid: body\\.healthCheck\\.${field}: U\\+D[8F]\\w\\w at position \\d is a lone surrogate`),
    ]),
    [
      'an IPv6 backend on an IPv4 dsr VIP',
      'PUT',
      vipPath('tcp', '198.19.0.1', 80, '2001:db8::11'),
      {},
      409,
      /dsr needs backends of the VIP's family/,
    ],
    [
      'a backend at the VIP address',
      'PUT',
      vipPath('tcp', '198.19.0.1', 80, '198.19.0.1'),
      {},
      409,
      /backend 198\.19\.0\.1 is the VIP's own address/,
    ],
    [
      'a backend at the VIP address, written another way',
      'PUT',
      vipPath('udp', '2001:db8:f::1', 53, '2001:0db8:f:0::1'),
      {},
      409,
      /backend 2001:db8:f::1 is the VIP's own address/,
    ],
    ['an IPv4 backend on an IPv6 ipip VIP', 'PUT', vipPath('udp', '2001:db8:f::1', 53, '198.18.0.11'), {}, 409, /cannot be tunnelled/],
    [
      'switching a VIP with IPv4 backends to a family clash',
      'PUT',
      vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'),
      { weight: 1, state: 'bogus' },
      400,
      /body\.state/,
    ],
    ['a VIP over capacity', 'PUT', vipPath('tcp', '198.19.0.9', 80), { forwarding: 'dsr' }, 409, /no room for another VIP/],
    ...(
      [
        ['an unspecified', '0.0.0.0', /unspecified/],
        ['the limited broadcast', '255.255.255.255', /limited broadcast/],
        ['a multicast', '224.0.0.1', /multicast/],
        ['a reserved', '240.0.0.1', /reserved/],
        ['a loopback', '127.0.0.1', /loopback/],
        ['a link-local', '169.254.1.1', /link-local/],
        ['the IPv6 unspecified', '::', /unspecified/],
        ['the IPv6 loopback', '::1', /loopback/],
        ['an IPv6 multicast', 'ff02::1', /multicast/],
        ['an IPv6 link-local', 'fe80::1', /link-local/],
        ['an IPv4-mapped', '::ffff:198.19.0.9', /IPv4-mapped IPv6 address: use the IPv4 form 198\.19\.0\.9/],
      ] as const
    ).flatMap(([what, address, message]): Case[] => [
      [
        `${what} VIP address`,
        'PUT',
        vipPath('tcp', address, 80),
        { forwarding: 'ipip' },
        400,
        new RegExp(`params\\.address: .*${message.source}`),
      ],
      [
        `${what} backend address`,
        'PUT',
        vipPath('tcp', '198.19.0.1', 80, address),
        {},
        400,
        new RegExp(`params\\.backend: .*${message.source}`),
      ],
    ]),
    ...['0x50', '1e1', '+80', '%2080', '080', '80.0', '-1', ' 80', '8O'].map((port): Case => [
      `the port ${JSON.stringify(port)}`,
      'PUT',
      vipPath('tcp', '198.19.0.1', port),
      { forwarding: 'dsr' },
      400,
      /params\.port: a port is decimal digits without sign or leading zeros/,
    ]),
    ...(
      [
        ['a space', '/a b', /U\+0020 at position 2/],
        ['CR LF', '/a\r\nHost: x', /U\+000D at position 2/],
        ['NUL', '/a\u0000', /U\+0000 at position 2/],
        ['a character above U+00FF', '/\u0100', /U\+0100 at position 1/],
        ['a character in Latin-1', '/é', /U\+00E9 at position 1/],
        ['a fragment', '/a#b', /"#" \(U\+0023\) at position 2/],
        ['a bad percent escape', '/a%2', /"%" at position 2 is not followed by two hex digits/],
        ['no leading slash', 'a', /must start with \//],
        ['a leading //', '//host/a', /must not start with \/\//],
        ['too long', `/${'a'.repeat(1024)}`, /longer than 1024 characters/],
      ] as const
    ).map(([what, path, message]): Case => [
      `a check path with ${what}`,
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'http', path } },
      400,
      new RegExp(`body\\.healthCheck\\.path: (character )?${message.source}`),
    ]),
    ['a weight as a string', 'PUT', vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'), { weight: '3' }, 400, /body\.weight/],
    [
      'a check port as a string',
      'PUT',
      VIP4,
      { forwarding: 'dsr', healthCheck: { type: 'tcp', port: '0x50' } },
      400,
      /body\.healthCheck\.port/,
    ],
    ['a backend of a VIP that does not exist', 'PUT', vipPath('tcp', '198.19.0.7', 80, '198.18.0.11'), {}, 404, /does not exist/],
    ['deleting a VIP that does not exist', 'DELETE', vipPath('tcp', '198.19.0.7', 80), undefined, 404, /does not exist/],
    ['deleting a backend that does not exist', 'DELETE', vipPath('tcp', '198.19.0.1', 80, '198.18.0.77'), undefined, 404, /does not exist/],
    ['a missing token', 'PUT', VIP4, { forwarding: 'ipip' }, 401, /bearer token/, { authorization: '' }],
    ['a wrong token', 'PUT', VIP4, { forwarding: 'ipip' }, 401, /bearer token/, { authorization: 'Bearer nope' }],
    ['a body that is not JSON', 'PUT', VIP4, '{"forwarding": ', 400, /JSON/i, { 'content-type': 'application/json' }],
    [
      'an oversized body',
      'PUT',
      VIP4,
      JSON.stringify({ forwarding: 'dsr', pad: 'x'.repeat(100_000) }),
      413,
      /body/i,
      { 'content-type': 'application/json' },
    ],
    ['an unknown route', 'GET', '/v1/nothing', undefined, 404, /no route/],
  ];

  test.each(cases)('%s', async (_, method, url, payload, status, message, headers) => {
    const stateBefore = d.stateText();
    const apiBefore = (await authed('GET', '/v1/vips')).json();
    const mapsBefore = JSON.stringify(d.dp.listVips());
    const res = await authed(method, url, payload, headers);
    expect(res.statusCode).toBe(status);
    const body = res.json();
    expect(body.error.code).toEqual(expect.any(String));
    expect(`${body.error.message} ${JSON.stringify(body.error.details ?? '')}`).toMatch(message);
    expect(d.stateText()).toBe(stateBefore);
    expect((await authed('GET', '/v1/vips')).json()).toEqual(apiBefore);
    expect(JSON.stringify(d.dp.listVips())).toBe(mapsBefore);
  });
});

describe('refusals that depend on the state', () => {
  beforeEach(async () => {
    d = await startWithToken();
  });
  afterEach(async () => d.close());

  test('switching forwarding to one its backends cannot use is a 409', async () => {
    await seed();
    await authed('PUT', vipPath('udp', '2001:db8:f::1', 53, '2001:db8::11'));
    const stateBefore = d.stateText();
    const res = await authed('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'dsr' });
    expect(res.statusCode).toBe(200); // same family: fine
    await authed('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip' });
    await authed('PUT', vipPath('tcp', '198.19.0.1', 80, '2001:db8::12'));
    const clash = await authed('PUT', vipPath('tcp', '198.19.0.1', 80), { forwarding: 'dsr' });
    expect(clash.statusCode).toBe(409);
    expect(clash.json().error.details.backends[0]).toMatch(/2001:db8::12/);
    expect(d.stateText()).not.toBe(stateBefore);
  });

  test('health endpoints need no token; every /v1 path, /metrics and /documentation do', async () => {
    expect((await d.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    for (const url of ['/v1/status', '/v1/vips', '/v1/stats', VIP4, '/metrics', '/documentation/json']) {
      expect((await d.app.inject({ method: 'GET', url })).statusCode).toBe(401);
    }
  });
});

test('the dashboard runs only its own script and style, and no other page may frame it', async () => {
  d = await startModelDaemon();
  try {
    for (const url of ['/ui', '/ui/app.js', '/ui/style.css']) {
      const csp = (await get(url)).headers['content-security-policy'];
      expect(csp, url).toMatch(/(^|; )script-src 'self'(;|$)/);
      expect(csp, url).toMatch(/(^|; )style-src 'self'(;|$)/);
      expect(csp, url).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
    }
  } finally {
    await d.close();
  }
});
