/**
 * The balancer the packet cases run through, and the frame they start from: the
 * bench's sections and test/bench-harness.test.ts share them.
 */
import { formatAddress, parseAddress, parseMac } from '../control/net/address.js';
import { FORWARD_DSR, FORWARD_IPIP, IPPROTO_TCP, IPPROTO_UDP } from '../control/dataplane/codec.js';
import { TestDataplane, testConfig } from '../control/dataplane/test-dataplane.js';
import { buildMaglevTable } from '../control/maglev/maglev.js';
import type { FrameSpec } from './frames.js';

export const MAC_LB = '02:00:00:00:00:02';
const backendMac = (n: number) => parseMac(`02:00:00:00:01:${(n % 256).toString(16).padStart(2, '0')}`);
/** The address of a VIP's backend `i`: the ring's key for it. */
const backendAddressAt = (family: 4 | 6, i: number) =>
  family === 4 ? `198.18.${1 + (i >> 8)}.${i & 255}` : `2001:db8:1::${(i + 1).toString(16)}`;

/** A ring member: a backend id and its address, the Maglev key. */
interface RingMember {
  id: number;
  address: string;
}

/** Installs VIP `vipId`'s ring over `members`, equal weights, as the daemon builds it. */
function setEqualRing(dp: TestDataplane, vipId: number, members: readonly RingMember[]): void {
  const table = buildMaglevTable(
    members.map((m) => ({ key: m.address, weight: 1 })),
    dp.ringSize,
  );
  dp.setRing(
    vipId,
    Uint32Array.from(table, (i) => members[i]!.id),
  );
}

/**
 * A balancer with `vips` VIPs (default 4: the packet-cost cases' v4 TCP, v4 UDP, v6
 * and ipip VIPs, in that order; more are v4 TCP on other addresses), `backends` each.
 */
export function balancer(o: { maxFlows?: number; vips?: number; backends?: number; objectPath?: string } = {}): TestDataplane {
  const backends = o.backends ?? 3;
  const vips = o.vips ?? 4;
  const extraVips = Math.max(0, vips - 4);
  const dp = TestDataplane.open({
    ...(o.objectPath ? { objectPath: o.objectPath } : {}),
    maxFlows: o.maxFlows ?? 65536,
    maxVips: Math.max(8, extraVips + 8),
    maxBackends: Math.max(64, (extraVips + 4) * backends + 8),
  });
  dp.setConfig(testConfig({ sourceV4: parseAddress('198.18.0.2').bytes, sourceV6: parseAddress('2001:db8::2').bytes }));
  let nextBackend = 0;
  const addVip = (id: number, address: string, port: number, proto: number, forwarding: number, family: 4 | 6) => {
    dp.setVip({ family, address: parseAddress(address).bytes, port, proto }, { id, flags: 0, forwarding });
    const members: RingMember[] = [];
    for (let i = 0; i < backends; i++) {
      const backendAddress = backendAddressAt(family, i);
      const backendId = nextBackend++;
      dp.setBackend(backendId, { family, address: parseAddress(backendAddress).bytes, mac: backendMac(i), vipId: id });
      members.push({ id: backendId, address: backendAddress });
    }
    setEqualRing(dp, id, members);
  };
  const caseVips = [
    () => addVip(0, '198.19.0.1', 80, IPPROTO_TCP, FORWARD_DSR, 4),
    () => addVip(1, '198.19.0.1', 53, IPPROTO_UDP, FORWARD_DSR, 4),
    () => addVip(2, '2001:db8:f::1', 80, IPPROTO_TCP, FORWARD_DSR, 6),
    () => addVip(3, '198.19.0.2', 80, IPPROTO_TCP, FORWARD_IPIP, 4),
  ];
  for (const add of caseVips.slice(0, vips)) add();
  for (let i = 0; i < extraVips; i++) addVip(4 + i, `198.19.${1 + (i >> 8)}.${i & 255}`, 443, IPPROTO_TCP, FORWARD_DSR, 4);
  return dp;
}

/**
 * Adds a backend to VIP `vipId` in the first free backend slot and rebuilds the VIP's
 * ring over its members and the new one, as the daemon does. Returns the new id.
 */
export function addBackend(dp: TestDataplane, vipId: number): number {
  const ids = [...new Set(dp.getRing(vipId))];
  const members = ids.map((id) => {
    const backend = dp.getBackend(id)!;
    return { id, address: formatAddress(backend.family, backend.address), family: backend.family };
  });
  const family = members[0]!.family;
  let id = 0;
  while (dp.getBackend(id)) id++;
  const address = backendAddressAt(family, ids.length);
  dp.setBackend(id, { family, address: parseAddress(address).bytes, mac: backendMac(ids.length), vipId });
  setEqualRing(dp, vipId, [...members, { id, address }]);
  return id;
}

export const V4_TCP: FrameSpec = { family: 4, proto: 'tcp', src: '198.18.0.10', dst: '198.19.0.1', dport: 80 };
/** Offset of the IPv4 source address in an Ethernet frame: the harness varies it for new flows. */
export const V4_SOURCE_OFFSET = 14 + 12;
