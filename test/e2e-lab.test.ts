/**
 * End to end in network namespaces: real TCP and UDP from a client through the
 * balancer (native XDP on a veth) to three backends, for dsr and ipip, IPv4 and
 * IPv6. Answers go from the backends straight to the client.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseAddress } from '../control/net/address.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../control/dataplane/codec.js';
import { BalancerFixture } from './lib/fixture.js';
import { BACKENDS, Lab, LAB } from '../scripts/lab/lab.js';
import { inNamespace } from '../scripts/lab/netns.js';

const FLOWS = 60;

let lab: Lab;
let lb: BalancerFixture;

beforeAll(async () => {
  lab = await Lab.create('e2e');
  lb = new BalancerFixture({
    ringSize: 65537,
    maxFlows: 65536,
    config: { sourceV4: parseAddress(LAB.lb4).bytes, sourceV6: parseAddress(LAB.lb6).bytes, gatewayMac: Buffer.alloc(6) },
  });
  inNamespace(lab.ns.lb, () => lb.dp.attach('eth0', 'native'));
});

afterAll(() => {
  lb?.close();
  lab?.destroy();
});

let nextVipId = 1;
afterEach(() => {
  // Each test installs its own VIPs; remove them so the next starts clean.
  for (const family of [4, 6] as const) {
    for (const proto of [IPPROTO_TCP, IPPROTO_UDP]) {
      const address = parseAddress(family === 4 ? LAB.vip4 : LAB.vip6).bytes;
      lb.dp.removeVip({ family, address, port: proto === IPPROTO_TCP ? LAB.tcpPort : LAB.udpPort, proto });
    }
  }
});

type Case = [forwarding: 'dsr' | 'ipip', proto: 'tcp' | 'udp', family: 4 | 6];
const cases: Case[] = (['dsr', 'ipip'] as const).flatMap((forwarding) =>
  (['tcp', 'udp'] as const).flatMap((proto) => ([4, 6] as const).map((family): Case => [forwarding, proto, family])),
);

describe('real traffic through the lab', () => {
  test.each(cases)(
    '%s %s over IPv%i: every flow answered, spread over all backends, replies bypass the LB',
    async (forwarding, proto, family) => {
      const vip = family === 4 ? LAB.vip4 : LAB.vip6;
      const vipId = nextVipId++;
      lb.addVip({
        id: vipId,
        address: vip,
        port: proto === 'tcp' ? LAB.tcpPort : LAB.udpPort,
        proto,
        forwarding,
        backends: BACKENDS.map((n, i) => ({
          id: vipId * 10 + n,
          address: family === 4 ? LAB.backend4(n) : LAB.backend6(n),
          mac: lab.backendMacs[i],
        })),
      });
      lb.counterDelta();
      const decapBefore = BACKENDS.map((n) => lab.decapsulated(n));

      const summary = await lab.client(proto, vip, FLOWS);

      expect(summary.errors).toEqual([]);
      expect(summary.ok).toBe(FLOWS);
      expect(Object.keys(summary.byBackend).sort()).toEqual(['b1', 'b2', 'b3']);

      const counters = lb.counterDelta();
      const forwarded = counters[forwarding === 'dsr' ? 'tx_dsr' : 'tx_ipip'] ?? 0;
      // TCP: SYN, request, ACKs and FIN per flow; UDP: one datagram per flow.
      expect(forwarded).toBeGreaterThanOrEqual(proto === 'tcp' ? FLOWS * 3 : FLOWS);
      // Replies through the LB would show up as IP packets to the client (pass_not_vip),
      // at least one per flow; only neighbour discovery and MLD noise may.
      expect(counters.pass_not_vip ?? 0).toBeLessThan(FLOWS / 2);
      expect(lb.dp.vipStats(vipId).packets).toBe(forwarded);

      const decapsulated = BACKENDS.reduce((sum, n, i) => sum + lab.decapsulated(n) - decapBefore[i]!, 0);
      expect(decapsulated).toBe(forwarding === 'ipip' ? forwarded : 0);
    },
  );
});
