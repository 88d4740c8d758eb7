/** The pcapng writer (read back block by block) and the capture query: outcome globs, VIP text, bounds. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ALL_OUTCOMES, captureQuerySchema } from '../../control/capture/filter.js';
import { pcapngHeader, pcapngPacket, pcapngStatistics, readBlocks } from '../../control/capture/pcapng.js';
import { OUTCOMES } from '../../control/dataplane/codec.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

const bits = (...names: (typeof OUTCOMES)[number][]) => names.reduce((mask, name) => mask | (1 << OUTCOMES.indexOf(name)), 0);

describe('pcapng', () => {
  const header = pcapngHeader({ snaplen: 1500, interfaceName: 'eth0' });

  test('section header (byte-order magic, version 1.0), then an Ethernet interface with nanosecond timestamps', () => {
    expect(header.readUInt32LE(0)).toBe(0x0a0d0d0a);
    const shbLength = header.readUInt32LE(4);
    expect(header.readUInt32LE(8)).toBe(0x1a2b3c4d);
    expect([header.readUInt16LE(12), header.readUInt16LE(14)]).toEqual([1, 0]);
    expect(header.readUInt32LE(shbLength - 4)).toBe(shbLength);
    const idb = header.subarray(shbLength);
    expect(idb.readUInt32LE(0)).toBe(1);
    expect(idb.readUInt16LE(8)).toBe(1); // LINKTYPE_ETHERNET
    expect(idb.readUInt32LE(12)).toBe(1500);
    expect(idb.readUInt32LE(idb.length - 4)).toBe(idb.length);
    // if_name "eth0", then if_tsresol 9 (10^-9 s)
    expect(idb.subarray(16, 24)).toEqual(Buffer.from([2, 0, 4, 0, ...Buffer.from('eth0')]));
    expect(idb.subarray(24, 29)).toEqual(Buffer.from([9, 0, 1, 0, 9]));
  });

  test('packets and statistics read back as written, every block padded to 4 bytes', () => {
    const time = 1_767_225_600_123_456_789n;
    const odd = Buffer.from('0123456789a'); // 11 bytes: data and comment both need padding
    const file = Buffer.concat([
      header,
      pcapngPacket({ time, data: odd, length: 1514, comment: 'received tx_dsr vip=tcp/198.51.100.10:80 packet=0:1' }),
      pcapngPacket({ time: time + 5n, data: Buffer.alloc(0), length: 60, comment: 'sent' }),
      pcapngStatistics({ start: time, end: time + 10n, received: 3n, lostInKernel: 4n, droppedByDaemon: 5n }),
    ]);
    const { blocks, rest } = readBlocks(file);
    expect(rest).toHaveLength(0);
    expect(blocks).toEqual([
      { type: 'other', code: 0x0a0d0d0a },
      { type: 'other', code: 1 },
      { type: 'packet', time, data: odd, length: 1514, comment: 'received tx_dsr vip=tcp/198.51.100.10:80 packet=0:1' },
      { type: 'packet', time: time + 5n, data: Buffer.alloc(0), length: 60, comment: 'sent' },
      { type: 'statistics', received: 3n, lostInKernel: 4n, droppedByDaemon: 5n },
    ]);
    // The timestamp is stored high word first.
    const epb = pcapngPacket({ time, data: odd, length: 1514, comment: 'x' });
    expect((BigInt(epb.readUInt32LE(12)) << 32n) | BigInt(epb.readUInt32LE(16))).toBe(time);
    expect(epb.length % 4).toBe(0);
  });

  test('a block cut short is left over for the next read; garbage is refused', () => {
    const packet = pcapngPacket({ time: 1n, data: Buffer.alloc(20), length: 20, comment: 'received pass_not_vip' });
    const { blocks, rest } = readBlocks(Buffer.concat([header, packet.subarray(0, 30)]));
    expect(blocks).toHaveLength(2);
    expect(readBlocks(Buffer.concat([rest, packet.subarray(30)])).blocks).toHaveLength(1);
    expect(() => readBlocks(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/pcapng: block of type .* has length/);
  });
});

describe('capture query', () => {
  const parse = (query: Record<string, unknown>) => captureQuerySchema.safeParse(query);

  test('outcome names and globs, comma-separated or repeated, become one bit mask', () => {
    expect(parse({ outcome: 'drop_*' }).data?.outcome).toBe(
      OUTCOMES.reduce((m, name, i) => (name.startsWith('drop_') ? m | (1 << i) : m), 0),
    );
    expect(parse({ outcome: 'tx_dsr,pass_not_vip' }).data?.outcome).toBe(bits('tx_dsr', 'pass_not_vip'));
    expect(parse({ outcome: ['tx_*', 'drop_fragment'] }).data?.outcome).toBe(
      bits('tx_dsr', 'tx_ipip', 'tx_icmp_echo_reply', 'tx_icmp_too_big', 'drop_fragment'),
    );
    expect(parse({ outcome: '*' }).data?.outcome).toBe(ALL_OUTCOMES);
    expect(parse({}).data).toEqual({});
  });

  test.each([
    [{ outcome: 'dorp_*' }, `"dorp_*" names no outcome (${OUTCOMES.join(', ')})`],
    [{ outcome: 'dsr' }, `"dsr" names no outcome (${OUTCOMES.join(', ')})`],
    [{ outcome: 'tx_dsr,' }, '"" is not an outcome name (as in /v1/stats) or a glob of them, e.g. drop_*'],
    [{ outcome: 'DROP_*' }, '"DROP_*" is not an outcome name (as in /v1/stats) or a glob of them, e.g. drop_*'],
    [{ vip: '198.51.100.10:80' }, 'not a VIP as PROTO/ADDR:PORT (tcp/198.51.100.10:80, udp/[2001:db8::10]:53): "198.51.100.10:80"'],
    [{ vip: 'tcp/2001:db8::1:80' }, 'not a VIP as PROTO/ADDR:PORT (tcp/198.51.100.10:80, udp/[2001:db8::10]:53): "tcp/2001:db8::1:80"'],
    [{ vip: 'tcp/198.51.100.10:65536' }, 'port 65536 is over 65535'],
    [{ vip: 'tcp/127.0.0.1:80' }, '127.0.0.1 is a loopback address (127.0.0.0/8), not a unicast address'],
    [{ backend: 'example.com' }, 'not an IPv4 or IPv6 address: "example.com"'],
    [{ count: '0' }, 'a whole number from 1 to 1000000 in decimal digits, not "0"'],
    [{ count: '1000001' }, 'a whole number from 1 to 1000000 in decimal digits, not "1000001"'],
    [{ count: '1e3' }, 'a whole number from 1 to 1000000 in decimal digits, not "1e3"'],
    [{ snaplen: '65536' }, 'a whole number from 1 to 65535 in decimal digits, not "65536"'],
    [{ snaplen: '-1' }, 'a whole number from 1 to 65535 in decimal digits, not "-1"'],
    [{ snaplen: '080' }, 'a whole number from 1 to 65535 in decimal digits, not "080"'],
  ])('%j is refused with the range or the form, naming the value once: %s', (query, message) => {
    const result = parse(query);
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => issue.message)).toEqual([message]);
  });

  test('an unknown parameter is refused', () => {
    expect(parse({ since: '1' }).error!.issues[0]!.message).toContain('Unrecognized key');
  });

  test('the bounds themselves are taken', () => {
    expect(parse({ count: '1000000', snaplen: '1' }).data).toEqual({ count: 1_000_000, snaplen: 1 });
    expect(parse({ count: '1', snaplen: '65535' }).data).toEqual({ count: 1, snaplen: 65535 });
  });

  test('VIPs as PROTO/ADDR:PORT, IPv6 in brackets, normalised', () => {
    expect(parse({ vip: 'udp/[2001:DB8::0:10]:53' }).data?.vip).toEqual({ protocol: 'udp', address: '2001:db8::10', port: 53 });
    expect(parse({ vip: 'tcp/198.51.100.10:0' }).data?.vip).toEqual({ protocol: 'tcp', address: '198.51.100.10', port: 0 });
  });
});

describe('GET and DELETE /v1/capture without a kernel data plane', () => {
  let d: ModelDaemon;
  beforeAll(async () => {
    d = await startModelDaemon();
  });
  afterAll(async () => d?.close());

  test('a bad query is a 400 naming the field, before anything else', async () => {
    const response = await d.app.inject({ method: 'GET', url: '/v1/capture?count=0&outcome=dsr' });
    expect(response.statusCode).toBe(400);
    const { error } = response.json<{ error: { code: string; details: { path: string }[] } }>();
    expect(error.code).toBe('invalid_request');
    expect(error.details.map((d) => d.path).sort()).toEqual(['querystring.count', 'querystring.outcome.0']);
  });

  test('a VIP or backend the state does not have is a 404 naming it: the filter would capture nothing', async () => {
    const put = (url: string, payload: object) => d.app.inject({ method: 'PUT', url, payload });
    expect((await put('/v1/vips/tcp/198.51.100.10/80', { forwarding: 'dsr' })).statusCode).toBe(201);
    expect((await put('/v1/vips/tcp/198.51.100.10/80/backends/10.0.0.11', {})).statusCode).toBe(201);
    const capture = async (query: string) => (await d.app.inject({ method: 'GET', url: `/v1/capture?${query}` })).json<object>();
    expect(await capture('backend=10.0.0.12')).toEqual({
      error: { code: 'not_found', message: 'backend 10.0.0.12 of any VIP does not exist' },
    });
    expect(await capture('vip=tcp/198.51.100.10:80&backend=10.0.0.12')).toEqual({
      error: { code: 'not_found', message: 'backend 10.0.0.12 of VIP tcp/198.51.100.10:80 does not exist' },
    });
    expect(await capture('vip=tcp/198.51.100.10:81')).toEqual({
      error: { code: 'not_found', message: 'VIP tcp/198.51.100.10:81 does not exist' },
    });
    // Known ones pass to the data plane, which this daemon lacks.
    expect(await capture('vip=tcp/198.51.100.10:80&backend=10.0.0.11')).toMatchObject({ error: { code: 'dataplane_unavailable' } });
  });

  test('a valid capture is 503: the daemon has no kernel data plane; nothing runs to stop', async () => {
    const response = await d.app.inject({ method: 'GET', url: '/v1/capture?outcome=drop_*&count=10' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ error: { code: 'dataplane_unavailable', message: 'capture needs the kernel data plane' } });
    const stop = await d.app.inject({ method: 'DELETE', url: '/v1/capture' });
    expect(stop.statusCode).toBe(404);
    expect(stop.json()).toMatchObject({ error: { code: 'not_found', message: 'no capture is running' } });
  });
});
