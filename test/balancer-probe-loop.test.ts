/**
 * Looped probes through BPF_PROG_TEST_RUN: a via-vip probe that missed the tc program
 * xlb_probe (the LB's route to the VIP left by another interface) and came back to the
 * balancer is dropped (drop_probe_loop) and never recorded, rather than balanced to
 * whichever backend the ring picks; everything else from the probe range or the LB's
 * address is balanced as ever.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { PROBE_PORT_MAX, PROBE_PORT_MIN, VIP_F_NO_CONNTRACK } from '../control/dataplane/codec.js';
import { parseAddress } from '../control/net/address.js';
import { BalancerFixture, IP } from './lib/fixture.js';
import { backends4, backends6, tcp4, tcp6, udp4 } from './lib/frames.js';
import { XDP } from './lib/packet.js';

let f: BalancerFixture;
afterEach(() => f?.close());

/** A fixture with a dsr TCP VIP and a UDP VIP on port 53 for each family. */
function balancer(options: ConstructorParameters<typeof BalancerFixture>[0] = {}, flags = 0): BalancerFixture {
  const fixture = new BalancerFixture(options);
  fixture.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', flags, backends: backends4(1) });
  fixture.addVip({ id: 2, address: IP.vip6, port: 80, forwarding: 'dsr', flags, backends: backends6(2) });
  fixture.addVip({ id: 3, address: IP.vip4, port: 53, proto: 'udp', forwarding: 'ipip', flags, backends: backends4(3) });
  return fixture;
}

describe('a packet from the LB\u2019s own source and a probe port', () => {
  test('TCP and UDP, IPv4 and IPv6, both ends of the range: dropped and counted, no flow recorded', () => {
    f = balancer();
    const frames = [
      tcp4({ src: IP.source4, sport: PROBE_PORT_MIN, flags: 'S' }),
      tcp4({ src: IP.source4, sport: PROBE_PORT_MAX, flags: 'S' }),
      tcp6({ src: IP.source6, sport: PROBE_PORT_MIN + 5, flags: 'S' }),
      udp4({ src: IP.source4, sport: PROBE_PORT_MIN + 9 }),
    ];
    for (const frame of frames) expect(f.run(frame).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_probe_loop: frames.length });
    expect(f.dp.flowTableUse().flows).toBe(0);
  });

  test('a VIP without conntrack drops it too', () => {
    f = balancer({}, VIP_F_NO_CONNTRACK);
    expect(f.run(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN })).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_probe_loop: 1 });
  });

  test('with flow bits the configured source itself is the probes\u2019: compared whole', () => {
    f = balancer({ config: { sourceV4FlowBits: 4 } });
    expect(f.run(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN })).verdict).toBe(XDP.DROP);
    expect(f.counterDelta()).toEqual({ drop_probe_loop: 1 });
  });
});

describe('balanced as ever', () => {
  test('the LB\u2019s own source below the probe range', () => {
    f = balancer();
    expect(f.run(tcp4({ src: IP.source4, sport: PROBE_PORT_MIN - 1 })).verdict).toBe(XDP.TX);
    expect(f.run(tcp6({ src: IP.source6, sport: PROBE_PORT_MIN - 1 })).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 2 });
  });

  test('a client (another source) from a probe port', () => {
    f = balancer();
    expect(f.run(tcp4({ src: IP.client4, sport: PROBE_PORT_MIN })).verdict).toBe(XDP.TX);
    expect(f.run(tcp6({ src: IP.client6, sport: PROBE_PORT_MAX })).verdict).toBe(XDP.TX);
    expect(f.run(udp4({ src: IP.other4, sport: PROBE_PORT_MIN })).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 2, tx_ipip: 1 });
  });

  test('a recorded flow keeps its backend: only a miss is tested', () => {
    f = balancer();
    const frame = tcp4({ src: IP.source4, sport: PROBE_PORT_MIN });
    f.config.sourceV4 = parseAddress(IP.other4).bytes;
    f.dp.setConfig(f.config);
    expect(f.run(frame).verdict).toBe(XDP.TX);
    f.config.sourceV4 = parseAddress(IP.source4).bytes;
    f.dp.setConfig(f.config);
    expect(f.run(frame).verdict).toBe(XDP.TX);
    expect(f.counterDelta()).toEqual({ tx_dsr: 2 });
  });
});
