/**
 * What the daemon learns from the host: neighbour probes for unresolved backends back
 * off and are capped per refresh, so thousands of unreachable backends cost a trickle
 * of datagrams.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { gatewayMac, NeighbourTable } from '../control/daemon/host.js';

/** Loopback addresses no other test uses: probes to them land on our discard-port sockets. */
const ADDRESSES = ['127.77.0.9', '127.77.0.10'];

/** Counts the probes (empty datagrams) each address received since the last call. */
class ProbeSinks {
  private readonly sinks = ADDRESSES.map(() => dgram.createSocket('udp4'));
  private readonly sender = dgram.createSocket('udp4');
  private readonly counts = ADDRESSES.map(() => 0);
  private awaited: { marker: string; arrived: () => void } | null = null;
  private markers = 0;

  async open(): Promise<void> {
    for (const [i, sink] of this.sinks.entries()) {
      sink.on('message', (message) => {
        if (message.length === 0) this.counts[i]!++;
        else if (message.toString() === this.awaited?.marker) this.awaited.arrived();
      });
      sink.bind(9, ADDRESSES[i]);
      await once(sink, 'listening');
    }
  }

  /** Loopback delivers in order: once a marker sent now arrives at every sink, every
   * probe sent before it has arrived too. */
  async probesSinceLastCall(): Promise<number[]> {
    for (const address of ADDRESSES) {
      const marker = `marker ${this.markers++}`;
      await new Promise<void>((arrived) => {
        this.awaited = { marker, arrived };
        this.sender.send(marker, 9, address);
      });
    }
    return this.counts.splice(0, this.counts.length, ...this.counts.map(() => 0));
  }

  close(): void {
    for (const socket of [...this.sinks, this.sender]) socket.close();
  }
}

let sinks: ProbeSinks;
beforeEach(async () => {
  sinks = new ProbeSinks();
  await sinks.open();
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(() => {
  vi.useRealTimers();
  sinks.close();
});

/** Probes per address for a refresh at each time (ms after the start). */
async function probesAt(table: NeighbourTable, wanted: string[], times: number[]): Promise<number[][]> {
  const start = Date.now();
  const out: number[][] = [];
  for (const ms of times) {
    vi.setSystemTime(start + ms);
    await table.refresh(wanted);
    out.push(await sinks.probesSinceLastCall());
  }
  return out;
}

test('an unresolved neighbour is probed at once, then after 2, 4 and 8 s, then every 16 s', async () => {
  const times = [0, 1000, 2000, 5000, 6000, 13000, 14000, 29000, 30000, 46000];
  const probes = await probesAt(new NeighbourTable('lo'), [ADDRESSES[0]!], times);
  expect(probes.map(([first]) => first)).toEqual([1, 0, 1, 0, 1, 0, 1, 0, 1, 1]);
});

test('a refresh sends at most its cap of probes, those waiting longest first', async () => {
  const probes = await probesAt(new NeighbourTable('lo', 1), ADDRESSES, [0, 1000, 2000, 3000]);
  // One each refresh: the first address, then the one left waiting, then the first again.
  expect(probes).toEqual([
    [1, 0],
    [0, 1],
    [1, 0],
    [0, 1],
  ]);
});

test('a default route that cannot be read is reported for each family, not taken for no gateway in silence', async () => {
  const reports: { error: unknown; context: Record<string, unknown> }[] = [];
  const mac = await gatewayMac('xlb-no-such-if', (error, context) => reports.push({ error, context }));
  expect(mac).toBeNull();
  expect(reports.map(({ context }) => context.command)).toEqual([
    'ip -4 route show default dev xlb-no-such-if',
    'ip -6 route show default dev xlb-no-such-if',
  ]);
  expect(String(reports[0]?.error)).toMatch(/Cannot find device/);
});
