/**
 * What the daemon learns from the host: neighbour probes for unresolved backends back
 * off, so thousands of unreachable backends cost a trickle of datagrams.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { expect, test, vi } from 'vitest';
import { NeighbourTable } from '../control/daemon/host.js';

/** A loopback address no other test uses: probes to it land on our discard-port socket. */
const ADDRESS = '127.77.0.9';

test('an unresolved neighbour is probed at once, then after 2, 4 and 8 s, then every 16 s', async () => {
  const sink = dgram.createSocket('udp4');
  const sender = dgram.createSocket('udp4');
  sink.bind(9, ADDRESS);
  await once(sink, 'listening');
  let probes = 0;
  let awaited: { marker: string; arrived: () => void } | null = null;
  sink.on('message', (message) => {
    if (message.length === 0) probes++;
    else if (message.toString() === awaited?.marker) awaited.arrived();
  });
  // Loopback delivers in order: once a marker sent after a refresh arrives, every
  // probe that refresh sent has arrived too.
  let markers = 0;
  const probesSinceLastCall = async () => {
    const marker = `marker ${markers++}`;
    await new Promise<void>((arrived) => {
      awaited = { marker, arrived };
      sender.send(marker, 9, ADDRESS);
    });
    const count = probes;
    probes = 0;
    return count;
  };
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    const table = new NeighbourTable('lo');
    const start = Date.now();
    const probedAt = async (ms: number) => {
      vi.setSystemTime(start + ms);
      await table.refresh([ADDRESS]);
      return probesSinceLastCall();
    };
    const schedule: [number, number][] = [[0, 1], [1000, 0], [2000, 1], [5000, 0], [6000, 1], [13000, 0], [14000, 1], [29000, 0], [30000, 1], [46000, 1]];
    for (const [ms, expected] of schedule) expect(await probedAt(ms), `probes at ${ms} ms`).toBe(expected);
  } finally {
    vi.useRealTimers();
    sink.close();
    sender.close();
  }
});
