/**
 * A via-vip success counts only if xlb_probe sent the probe on after it began (its
 * stamp in xlb_probe_sent_v1, read here through a stand-in): an answer to a probe that
 * missed xlb_probe fails, naming the interface and the route when that is the cause; a
 * direct check and a failed probe never ask. Real probes to local servers.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { type CheckSpec, probeResult } from '../../control/checks/check-type.js';
import { passedProbeProgram, type ProbeSentAt } from '../../control/checks/probe-stamp.js';
import { IPPROTO_TCP, IPPROTO_UDP, PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import type { ProbeKey } from '../../control/dataplane/probes.js';
import { type CheckResult, HealthMonitor, probe } from '../../control/health/checker.js';

const VIA_VIP = { via: 'vip', forwarding: 'dsr', backend: '198.18.0.11', probeInterface: 'eth0' } as const;
const ROUTE = 'route to 198.19.0.1 leaves via eth1, not eth0';

describe('the outcome of a probe', () => {
  test('stamped since it began: passed; before, or never: not', () => {
    expect(passedProbeProgram(100n, 100n)).toBe(true);
    expect(passedProbeProgram(100n, 250n)).toBe(true);
    expect(passedProbeProgram(100n, 99n)).toBe(false);
    expect(passedProbeProgram(100n, null)).toBe(false);
  });

  test('an answer that passed xlb_probe is a success; one that did not fails, naming the interface and the route when known', () => {
    expect(probeResult(VIA_VIP, null, true, null)).toBeNull();
    expect(probeResult(VIA_VIP, null, false, ROUTE)).toBe(
      `answered without passing xlb_probe on eth0 (${ROUTE}): the answer need not be from 198.18.0.11`,
    );
    expect(probeResult(VIA_VIP, null, false, null)).toBe(
      'answered without passing xlb_probe on eth0: the answer need not be from 198.18.0.11',
    );
  });

  test('a failure names its path, led by the route when that is the cause', () => {
    expect(probeResult(VIA_VIP, 'no answer in 150 ms', true, ROUTE)).toBe(
      `${ROUTE}: the probe cannot pass the probe program (no answer in 150 ms through dsr to 198.18.0.11)`,
    );
    expect(probeResult(VIA_VIP, 'no answer in 150 ms', true, null)).toBe('no answer in 150 ms through dsr to 198.18.0.11');
    expect(probeResult({ ...VIA_VIP, via: 'direct' }, 'connection refused', true, null)).toBe('direct to 198.18.0.11: connection refused');
  });

  test('an egress filter ahead of xlb_probe leads a failure and explains an unstamped answer', () => {
    const ahead = 'an egress filter (pref 1, u32) runs before xlb_probe on eth0: probes may not reach it';
    expect(probeResult(VIA_VIP, 'no answer in 150 ms', true, null, ahead)).toBe(
      `${ahead} (no answer in 150 ms through dsr to 198.18.0.11)`,
    );
    expect(probeResult(VIA_VIP, null, false, null, ahead)).toBe(
      `answered without passing xlb_probe on eth0 (${ahead}): the answer need not be from 198.18.0.11`,
    );
  });
});

describe('probes answered by local servers, the stamps told by the test', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  /** A via-vip spec to 127.0.0.1:`port` from a probe port of its own (no probe interface: no route lookup). */
  const viaVip = (type: string, port: number, n: number, options: object = {}): CheckSpec => ({
    type,
    address: '127.0.0.1',
    port,
    via: 'vip',
    backend: '198.18.0.11',
    forwarding: 'dsr',
    localPort: PROBE_PORT_MIN + ((process.pid * 7 + n) % 4000),
    intervalMs: 1000,
    timeoutMs: 1000,
    rise: 1,
    fall: 1,
    ...options,
  });

  async function httpServer(): Promise<number> {
    const server = http.createServer((_, response) => response.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    return (server.address() as AddressInfo).port;
  }

  /** A stand-in for the data plane's stamps: each key asked, answered by `stamp`. */
  function stamps(stamp: () => bigint | null): { sentAt: ProbeSentAt; asked: ProbeKey[] } {
    const asked: ProbeKey[] = [];
    return {
      asked,
      sentAt: (key) => {
        asked.push(key);
        return stamp();
      },
    };
  }

  const keyOf = (spec: CheckSpec, proto: number): ProbeKey => ({
    family: 4,
    address: Buffer.from([127, 0, 0, 1, ...Array<number>(12).fill(0)]),
    port: spec.port,
    proto,
    localPort: spec.localPort!,
  });

  test('tcp and http: a stamp from during the probe passes; one from before it, or none, fails', async () => {
    const port = await httpServer();
    for (const [type, n, options] of [
      ['tcp', 0, {}],
      ['http', 1, { path: '/', expectStatus: 200 }],
    ] as const) {
      const spec = viaVip(type, port, n, options);
      const during = stamps(() => process.hrtime.bigint());
      expect(await probe(spec, during.sentAt)).toBeNull();
      expect(during.asked).toEqual([keyOf(spec, IPPROTO_TCP)]);

      const before = process.hrtime.bigint();
      expect(await probe(spec, stamps(() => before).sentAt)).toBe(
        'answered without passing xlb_probe on the XDP interface: the answer need not be from 198.18.0.11',
      );
      expect(await probe(spec, stamps(() => null).sentAt)).toMatch(/^answered without passing xlb_probe/);
    }
  });

  test('udp: asked by its UDP key', async () => {
    const socket = dgram.createSocket('udp4');
    closers.push(() => socket.close());
    socket.on('message', (payload, peer) => socket.send(payload, peer.port, peer.address));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const spec = viaVip('udp', socket.address().port, 2, { send: 'ping' });
    const never = stamps(() => null);
    expect(await probe(spec, never.sentAt)).toMatch(/^answered without passing xlb_probe/);
    expect(never.asked).toEqual([keyOf(spec, IPPROTO_UDP)]);
  });

  test('a direct check, and a failed probe, never ask', async () => {
    const port = await httpServer();
    const asked = stamps(() => null);
    expect(await probe({ ...viaVip('tcp', port, 3), via: 'direct', localPort: undefined }, asked.sentAt)).toBeNull();
    const closed = await httpServer();
    closers.pop()!();
    expect(await probe(viaVip('tcp', closed, 4), asked.sentAt)).toBe('connection refused through dsr to 198.18.0.11');
    expect(asked.asked).toEqual([]);
  });

  test('the health monitor asks the stamps it is given: an unstamped answer takes the backend down', async () => {
    const port = await httpServer();
    const health = new HealthMonitor();
    closers.push(() => health.close());
    health.verifySentBy(() => null);
    const checked = once(health, 'checked') as Promise<[CheckResult]>;
    health.sync(new Map([['0:0', viaVip('tcp', port, 5)]]));
    const [result] = await checked;
    expect(result.reason).toMatch(/^answered without passing xlb_probe/);
    expect(health.status('0:0')?.health).toBe('down');
  });
});
