/** The backend decap program through BPF_PROG_TEST_RUN, alone and fed by the balancer. */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Decapsulator } from '../control/dataplane/decapsulator.js';
import { BalancerFixture, IP, MAC } from './lib/fixture.js';
import { ETH_P_IP, ETH_P_IPV6, ethernet, ipv4, ipv6, PROTO, tcp, udp, XDP } from './lib/packet.js';

const BACKEND4 = IP.backend4(1);
const BACKEND6 = IP.backend6(1);

const inner4 = () =>
  ipv4({ src: IP.client4, dst: IP.vip4, protocol: PROTO.TCP, payload: tcp({ src: IP.client4, dst: IP.vip4, sport: 40000, dport: 80 }) });
const inner6 = () =>
  ipv6({
    src: IP.client6,
    dst: IP.vip6,
    nextHeader: PROTO.UDP,
    payload: udp({ src: IP.client6, dst: IP.vip6, sport: 40000, dport: 53, payload: Buffer.from('q') }),
  });
const outer4 = (dst: string, payload: Buffer, o: { mf?: boolean } = {}) =>
  ipv4({ src: IP.source4, dst, protocol: PROTO.IPIP, payload, ...o });
const outer6 = (dst: string, payload: Buffer, nextHeader: number) => ipv6({ src: IP.source6, dst, nextHeader, payload });
const frame = (etherType: number, packet: Buffer) => ethernet(MAC.backend(1), MAC.lb, etherType, packet);

let decap: Decapsulator;
const run = (data: Buffer) => {
  const { retval, data: out } = decap.program.testRun({ data });
  return { verdict: retval, data: out };
};
const deltas = (before: ReturnType<Decapsulator['counters']>) => {
  const after = decap.counters();
  return Object.fromEntries(
    Object.entries(after)
      .map(([k, v]) => [k, v.packets - before[k as keyof typeof before].packets])
      .filter(([, v]) => v),
  );
};

beforeEach(() => {
  decap = Decapsulator.open();
  decap.addAddress(BACKEND4);
  decap.addAddress(BACKEND6);
});
afterEach(() => decap.close());

describe('decapsulation', () => {
  test.each([
    ['IPIP', () => frame(ETH_P_IP, outer4(BACKEND4, inner4())), ETH_P_IP, inner4],
    ['IP6IP6', () => frame(ETH_P_IPV6, outer6(BACKEND6, inner6(), PROTO.IPV6)), ETH_P_IPV6, inner6],
    ['IPv4 in IPv6', () => frame(ETH_P_IPV6, outer6(BACKEND6, inner4(), PROTO.IPIP)), ETH_P_IP, inner4],
  ])('%s to our address: outer header stripped, inner packet passed up', (_, build, etherType, inner) => {
    const before = decap.counters();
    const { verdict, data } = run(build());
    expect(verdict).toBe(XDP.PASS);
    expect(data).toEqual(frame(etherType, inner()));
    expect(deltas(before)).toEqual({ pass_decapsulated: 1 });
  });

  test.each([
    ['IPIP to another address', () => frame(ETH_P_IP, outer4(IP.other4, inner4()))],
    ['IP6IP6 to another address', () => frame(ETH_P_IPV6, outer6(IP.other6, inner6(), PROTO.IPV6))],
    ['plain TCP', () => frame(ETH_P_IP, inner4())],
    ['ARP', () => ethernet('ff:ff:ff:ff:ff:ff', MAC.lb, 0x0806, Buffer.alloc(28))],
  ])('%s passes untouched', (_, build) => {
    const before = decap.counters();
    const input = build();
    const { verdict, data } = run(input);
    expect(verdict).toBe(XDP.PASS);
    expect(data).toEqual(input);
    expect(deltas(before)).toEqual({ pass_not_encap: 1 });
  });

  test.each([
    ['an inner header cut short', () => frame(ETH_P_IP, outer4(BACKEND4, Buffer.alloc(0)))],
    ['an inner IPv6 header where IPv4 was announced', () => frame(ETH_P_IP, outer4(BACKEND4, inner6()))],
    ['a fragmented outer packet', () => frame(ETH_P_IP, outer4(BACKEND4, inner4(), { mf: true }))],
    ['an outer IPv6 header cut short', () => frame(ETH_P_IPV6, outer6(BACKEND6, inner6(), PROTO.IPV6).subarray(0, 30))],
  ])('%s is dropped', (_, build) => {
    const before = decap.counters();
    expect(run(build()).verdict).toBe(XDP.DROP);
    expect(deltas(before)).toEqual({ drop_malformed: 1 });
  });

  test('a removed address is no longer decapsulated', () => {
    expect(decap.removeAddress(BACKEND4)).toBe(true);
    const input = frame(ETH_P_IP, outer4(BACKEND4, inner4()));
    expect(run(input).data).toEqual(input);
  });
});

describe('balancer output through the decap program', () => {
  let lb: BalancerFixture;
  afterEach(() => lb.close());

  test.each([
    [
      'IPv4 in IPv4',
      IP.vip4,
      () => [{ id: 1, address: BACKEND4, mac: MAC.backend(1) }],
      () => ethernet(MAC.lb, MAC.client, ETH_P_IP, inner4()),
      ETH_P_IP,
    ],
    [
      'IPv6 in IPv6',
      IP.vip6,
      () => [{ id: 1, address: BACKEND6, mac: MAC.backend(1) }],
      () => ethernet(MAC.lb, MAC.client, ETH_P_IPV6, inner6()),
      ETH_P_IPV6,
    ],
    [
      'IPv4 in IPv6',
      IP.vip4,
      () => [{ id: 1, address: BACKEND6, mac: MAC.backend(1) }],
      () => ethernet(MAC.lb, MAC.client, ETH_P_IP, inner4()),
      ETH_P_IP,
    ],
  ])("%s: the backend sees the client's packet exactly as sent", (_, vip, backends, client, etherType) => {
    lb = new BalancerFixture();
    const udpVip = vip === IP.vip6;
    lb.addVip({ id: 1, address: vip, port: udpVip ? 53 : 80, proto: udpVip ? 'udp' : 'tcp', forwarding: 'ipip', backends: backends() });
    const sent = client();
    const tunnelled = lb.run(sent);
    expect(tunnelled.verdict).toBe(XDP.TX);
    const { verdict, data } = run(tunnelled.data);
    expect(verdict).toBe(XDP.PASS);
    expect(data).toEqual(ethernet(MAC.backend(1), MAC.lb, etherType, sent.subarray(14)));
  });
});
