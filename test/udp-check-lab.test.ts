/**
 * UDP health checks in the netns lab: a DNS VIP on port 53 checked by a real DNS
 * query. A backend whose UDP service stops leaves the UDP VIP's ring while its TCP
 * port still answers; started again, it comes back.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import type { Protocol } from '../control/state/schema.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { nsRun } from '../scripts/lab/netns.js';

/** A DNS query (id 0x1d0c, recursion desired) for health.xlb.test, type A. */
const QUERY = '1d0c01000001000000000000066865616c746803786c6204746573740000010001';
/** The A record's data the lab's server answers with (scripts/lab/server.mjs): length 4, 198.18.0.53. */
const ANSWER = '0004c6120035';
const TIMING = { intervalMs: 200, timeoutMs: 200, rise: 1, fall: 2 };

let lab: Lab;
let daemon: DaemonProcess;

beforeAll(async () => {
  lab = await Lab.create('udpcheck');
  daemon = await lab.startDaemon();
  // The kernel sends one port unreachable a second to a peer after a short burst: without the limit every probe sees one.
  nsRun(lab.ns.backends[1]!, 'sysctl', ['-qw', 'net.ipv4.icmp_ratelimit=0', 'net.ipv6.icmp.ratelimit=0']);
});
afterAll(() => lab?.destroy());

/** Polls the VIP until `done` holds (bounded); returns its view. */
async function until(protocol: Protocol, vip: string, port: number, done: (v: VipView) => boolean): Promise<VipView> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const view = await daemon.call<VipView>('GET', vipPath(protocol, vip, port));
    if (done(view)) return view;
    if (Date.now() > deadline) throw new Error(`${protocol} VIP ${vip} never reached the expected state: ${JSON.stringify(view.backends)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Backend n's address in the VIP's family. */
const backendAddress = (vip: string, n: number) => (vip.includes(':') ? LAB.backend6(n) : LAB.backend4(n));

/** A VIP with three backends, checked through the VIP (the default) by `forwarding`. */
async function createVip(
  protocol: Protocol,
  vip: string,
  port: number,
  healthCheck: Record<string, unknown>,
  forwarding: 'dsr' | 'ipip' = 'dsr',
): Promise<void> {
  await daemon.call('PUT', vipPath(protocol, vip, port), { forwarding, healthCheck: { ...healthCheck, ...TIMING } });
  for (const n of BACKENDS) await daemon.call('PUT', vipPath(protocol, vip, port, backendAddress(vip, n)));
}

const backend = (view: VipView, n: number) => view.backends.find((b) => b.address === backendAddress(view.address, n))!;

describe('udp checks in the lab', () => {
  test.each([
    [LAB.vips4[0], 'dsr'],
    [LAB.vips6[0], 'ipip'],
  ] as const)(
    '%s (%s): a backend whose UDP service stops goes down for the DNS VIP while its TCP port answers; restarted, it comes back',
    async (vip, forwarding) => {
      await createVip('udp', vip, LAB.udpPort, { type: 'udp', sendHex: QUERY, expectHex: ANSWER }, forwarding);
      await createVip('tcp', vip, LAB.tcpPort, { type: 'tcp' });
      await until('udp', vip, LAB.udpPort, (v) => v.backends.every((b) => b.health === 'up') && v.ringBackends === 3);
      await until('tcp', vip, LAB.tcpPort, (v) => v.backends.every((b) => b.health === 'up') && v.ringBackends === 3);

      await lab.setUdpService(2, false);
      try {
        const down = await until('udp', vip, LAB.udpPort, (v) => backend(v, 2).health === 'down' && !backend(v, 2).inRing);
        expect(backend(down, 2).healthReason).toBe(`port unreachable through ${forwarding} to ${backendAddress(vip, 2)}`);
        expect(down.backends.filter((b) => b.health === 'up').map((b) => b.address)).toEqual([
          backendAddress(vip, 1),
          backendAddress(vip, 3),
        ]);

        const udpFlows = await lab.client('udp', vip, 200, 16);
        expect(udpFlows.errors).toEqual([]);
        expect(udpFlows.ok).toBe(200);
        expect(udpFlows.byBackend.b2).toBeUndefined();

        const tcpFlows = await lab.client('tcp', vip, 300, 16);
        expect(tcpFlows.ok).toBe(300);
        expect(tcpFlows.byBackend.b2).toBeGreaterThan(0);
        expect(backend(await daemon.call<VipView>('GET', vipPath('tcp', vip, LAB.tcpPort)), 2)).toMatchObject({
          health: 'up',
          inRing: true,
        });
      } finally {
        await lab.setUdpService(2, true);
      }
      await until('udp', vip, LAB.udpPort, (v) => backend(v, 2).health === 'up' && v.ringBackends === 3);
      const again = await lab.client('udp', vip, 300, 16);
      expect(again.ok).toBe(300);
      expect(again.byBackend.b2).toBeGreaterThan(0);
    },
  );

  test('a reply without the expected answer marks every backend down, naming what came', async () => {
    const vip = LAB.vips4[1];
    await createVip('udp', vip, LAB.udpPort, { type: 'udp', sendHex: QUERY, expectHex: '0004c0000201' });
    const view = await until('udp', vip, LAB.udpPort, (v) => v.backends.every((b) => b.health === 'down'));
    for (const b of view.backends)
      expect(b.healthReason).toBe(
        `reply did not contain the expected bytes (got 49 bytes: 1d0c8180000100010000000006686561…) through dsr to ${b.address}`,
      );
  });
});
