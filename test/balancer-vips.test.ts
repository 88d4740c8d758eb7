/**
 * VIP lookup through BPF_PROG_TEST_RUN: hashing flows onto the ring, configuration states,
 * and the per-CPU VIP cache following every VIP change.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { IPPROTO_TCP, VIP_F_SOURCE_AFFINITY } from '../control/dataplane/codec.js';
import { BalancerFixture, IP, MAC } from './lib/fixture.js';
import { backendMac, backends4, backends6, flow4, tcp4, tcp6, udp4, vipKey4 } from './lib/frames.js';
import { ETH_P_IP, ethernet, ipv4, parseEthernet, PROTO, XDP } from './lib/packet.js';

let f: BalancerFixture;
afterEach(() => f?.close());

describe('hashing', () => {
  afterEach(() => f?.close());

  test('source affinity sends every flow of a client to one backend', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', flags: VIP_F_SOURCE_AFFINITY, backends: backends4(1) });
    const macs = new Set<string>();
    for (let sport = 1000; sport < 1040; sport++) macs.add(parseEthernet(f.run(tcp4({ sport })).data).dst);
    expect(macs).toEqual(new Set([backendMac(f.ringBackend(1, flow4(1000)))]));
  });

  test('source affinity on IPv6 too', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip6, port: 80, forwarding: 'dsr', flags: VIP_F_SOURCE_AFFINITY, backends: backends6(1) });
    const macs = new Set<string>();
    for (let sport = 1000; sport < 1020; sport++) macs.add(parseEthernet(f.run(tcp6({ sport })).data).dst);
    expect(macs.size).toBe(1);
  });

  test('flows spread over all backends', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const counts = new Map<string, number>();
    for (let sport = 1000; sport < 1600; sport++) {
      const mac = parseEthernet(f.run(tcp4({ sport })).data).dst;
      counts.set(mac, (counts.get(mac) ?? 0) + 1);
    }
    expect(counts.size).toBe(3);
    for (const c of counts.values()) expect(c).toBeGreaterThan(600 * 0.25);
  });

  test('two nodes with the same seed and config pick the same backends; another seed picks differently', () => {
    const nodes = [0x5eed, 0x5eed, 0xbeef].map((hashSeed) => {
      const node = new BalancerFixture({ config: { hashSeed } });
      node.addVip({ id: 1, address: IP.vip6, port: 80, forwarding: 'dsr', backends: backends6(1) });
      return node;
    });
    try {
      const picks = nodes.map((node) =>
        Array.from({ length: 100 }, (_, i) => parseEthernet(node.run(tcp6({ sport: 2000 + i })).data).dst).join(),
      );
      expect(picks[1]).toBe(picks[0]);
      expect(picks[2]).not.toBe(picks[0]);
    } finally {
      for (const node of nodes) node.close();
    }
  });

  test('the default ring size (65537) works end to end', () => {
    f = new BalancerFixture({ ringSize: 65537 });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.dp.getRing(1)!.length).toBe(65537);
    const { data } = f.run(tcp4());
    expect(parseEthernet(data).dst).toBe(backendMac(f.ringBackend(1, flow4())));
  });
});

describe('configuration states', () => {
  test('VIP traffic before the config is written is dropped as not configured', () => {
    f = new BalancerFixture({ configure: false });
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_not_configured: 1 });
  });

  test('a VIP whose ring is empty drops its traffic as no backend', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.setRing(1, []);
    expect(f.run(tcp4()).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_no_backend: 1 });
  });

  test('a removed VIP stops matching and its address stops being a VIP address', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 443, forwarding: 'dsr', backends: backends4(2) });
    const key = (port: number) => ({
      family: 4 as const,
      address: Buffer.from([198, 19, 0, 1, ...new Array(12).fill(0)]),
      port,
      proto: IPPROTO_TCP,
    });
    f.removeVip(1);
    expect(f.dp.removeVip(key(80))).toBe(false);
    expect(f.run(tcp4()).verdict).toBe(XDP.PASS);
    const gre = ethernet(
      MAC.lb,
      MAC.client,
      ETH_P_IP,
      ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.GRE, payload: Buffer.alloc(8) }),
    );
    expect(f.run(gre).verdict).toBe(XDP.DROP); // 443 still lives on the address
    f.removeVip(2);
    expect(f.run(gre).verdict).toBe(XDP.PASS);
    expect(f.counterDelta()).toEqual({ pass_not_vip: 2, drop_vip_proto: 1 });
  });

  test('a VIP record with a forwarding mode the program does not know is dropped and counted, not forwarded', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 7, backends: backends4(1) });
    const frame = tcp4();
    expect(f.run(frame)).toEqual({ verdict: XDP.DROP, data: frame });
    expect(f.counterDelta()).toEqual({ drop_unknown_forwarding: 1 });
    expect(f.dp.vipStats(1).packets).toBe(0);
  });

  test('every packet lands in exactly one outcome counter', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    const frames = [tcp4(), tcp4({ dst: IP.other4 }), tcp4().subarray(0, 30), udp4({ ip: { mf: true } }), tcp6()];
    for (const frame of frames) f.run(frame);
    const delta = f.counterDelta();
    expect(Object.values(delta).reduce((a, b) => a + (b ?? 0), 0)).toBe(frames.length);
  });
});

describe('the per-CPU VIP cache never outlives a VIP change', () => {
  test('a changed forwarding method applies to the next packet', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    f.dp.setVip(vipKey4(80), { id: 1, flags: 0, forwarding: 2 /* ipip */ });
    expect(parseEthernet(f.run(tcp4()).data).etherType).toBe(ETH_P_IP);
    expect(f.counterDelta()).toEqual({ tx_dsr: 1, tx_ipip: 1 });
  });

  test('a removed VIP stops matching at once; a new one matches at once', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    f.removeVip(1);
    expect(f.run(tcp4()).verdict).toBe(XDP.PASS);
    f.addVip({ id: 2, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(2) });
    expect(f.run(tcp4()).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 2, pass_not_vip: 1 });
  });

  test('an any-port answer cached for a port gives way to a new VIP on that exact port', () => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 0, forwarding: 'dsr', backends: [{ id: 17, address: IP.backend4(7), mac: MAC.backend(7) }] });
    expect(parseEthernet(f.run(tcp4({ dport: 8080 })).data).dst).toBe(MAC.backend(7));
    f.addVip({
      id: 2,
      address: IP.vip4,
      port: 8080,
      forwarding: 'dsr',
      backends: [{ id: 28, address: IP.backend4(8), mac: MAC.backend(8) }],
    });
    expect(parseEthernet(f.run(tcp4({ dport: 8080 })).data).dst).toBe(MAC.backend(8));
  });
});
