/**
 * A loaded balancer for packet tests: one Dataplane with a known config, helpers to
 * add VIPs whose rings come from control/maglev, run frames through
 * BPF_PROG_TEST_RUN, predict the backend a flow hashes to, and read counter deltas.
 */
import { parseAddress, parseMac } from '../../control/net/address.js';
import {
  type Family,
  FORWARD_DSR,
  FORWARD_IPIP,
  flowKeyCodec,
  IPPROTO_TCP,
  IPPROTO_UDP,
  OUTCOMES,
  type Outcome,
  DEFAULT_FLOW_IDLE_TIMEOUT,
} from '../../control/dataplane/codec.js';
import type { DataplaneConfig, Traffic } from '../../control/dataplane/records.js';
import { TestDataplane } from '../../control/dataplane/test-dataplane.js';
import { flowHash } from '../../control/dataplane/hash.js';
import { buildMaglevTable } from '../../control/maglev/maglev.js';

export const MAC = {
  client: '02:00:00:00:00:01',
  lb: '02:00:00:00:00:02',
  gateway: '02:00:00:00:00:fe',
  backend: (n: number) => `02:00:00:00:01:0${n}`,
};

export const IP = {
  client4: '198.18.0.10',
  client6: '2001:db8::10',
  vip4: '198.19.0.1',
  vip6: '2001:db8:f::1',
  source4: '198.18.0.2',
  source6: '2001:db8::2',
  backend4: (n: number) => `198.18.1.${n}`,
  backend6: (n: number) => `2001:db8:1::${n}`,
  other4: '198.18.0.99',
  other6: '2001:db8::99',
};

export interface BackendSpec {
  id: number;
  address: string;
  /** Omitted: the backend has no MAC of its own (ipip goes via the gateway). */
  mac?: string | undefined;
  weight?: number;
  flags?: number;
}

export interface VipSpec {
  id: number;
  address: string;
  port: number;
  proto?: 'tcp' | 'udp';
  /** A number is written as the record's raw forwarding code, as no control plane would. */
  forwarding: 'dsr' | 'ipip' | number;
  flags?: number;
  backends: BackendSpec[];
}

const FORWARDING = { dsr: FORWARD_DSR, ipip: FORWARD_IPIP };

const vipKeyOf = (spec: VipSpec) => {
  const { family, bytes } = parseAddress(spec.address);
  return { family, address: bytes, port: spec.port, proto: spec.proto === 'udp' ? IPPROTO_UDP : IPPROTO_TCP };
};

export interface Flow {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: number;
}

export type CounterDelta = Partial<Record<Outcome, number>>;

const ZERO_MAC = Buffer.alloc(6);

export function flowKey(flow: Flow): Buffer {
  const src = parseAddress(flow.src);
  const dst = parseAddress(flow.dst);
  return flowKeyCodec.encode({
    src: src.bytes,
    dst: dst.bytes,
    sport: flow.sport,
    dport: flow.dport,
    proto: flow.proto,
    family: src.family,
  });
}

export class BalancerFixture {
  readonly dp: TestDataplane;
  readonly config: DataplaneConfig;
  private readonly vips = new Map<number, { spec: VipSpec; table: Uint32Array }>();
  private lastCounters: Record<Outcome, Traffic>;

  constructor(options: { ringSize?: number; maxFlows?: number; config?: Partial<DataplaneConfig>; configure?: boolean } = {}) {
    this.dp = TestDataplane.open({ ringSize: options.ringSize ?? 251, maxFlows: options.maxFlows ?? 4096, maxVips: 64, maxBackends: 1024 });
    this.config = {
      hashSeed: 0x5eed,
      mtu: 1500,
      gatewayMac: parseMac(MAC.gateway),
      sourceV4: parseAddress(IP.source4).bytes,
      sourceV6: parseAddress(IP.source6).bytes,
      sourceV4FlowBits: 0,
      sourceV6FlowBits: 0,
      flowIdleTimeout: DEFAULT_FLOW_IDLE_TIMEOUT,
      ...options.config,
    };
    if (options.configure !== false) this.dp.setConfig(this.config);
    this.lastCounters = this.dp.counters();
  }

  /** Writes the VIP's ring and backends, counts its address, then writes its record (as the reconciler orders them). */
  addVip(spec: VipSpec): void {
    this.setRing(spec.id, spec.backends, spec);
    this.countVipAddress(spec.address);
    const forwarding = typeof spec.forwarding === 'number' ? spec.forwarding : FORWARDING[spec.forwarding];
    this.dp.setVip(vipKeyOf(spec), { id: spec.id, flags: spec.flags ?? 0, forwarding });
  }

  /** Removes the VIP's record (its ring stays), then counts its address again. */
  removeVip(vipId: number): void {
    const { spec } = this.vips.get(vipId)!;
    this.dp.removeVip(vipKeyOf(spec));
    this.vips.delete(vipId);
    this.countVipAddress(spec.address);
  }

  /** Writes the address's VIP count from the VIPs the fixture holds. */
  private countVipAddress(text: string): void {
    const { family, bytes } = parseAddress(text);
    const vips = [...this.vips.values()].filter((v) => v.spec.address === text).length;
    if (vips) this.dp.setVipAddress({ family, address: bytes }, vips);
    else this.dp.removeVipAddress({ family, address: bytes });
  }

  /** Writes these backends' records and rebuilds the VIP's ring from them (Maglev, by address). */
  setRing(vipId: number, backends: BackendSpec[], spec = this.vips.get(vipId)!.spec): void {
    for (const b of backends) {
      const backend = parseAddress(b.address);
      this.dp.setBackend(b.id, {
        family: backend.family,
        address: backend.bytes,
        mac: b.mac ? parseMac(b.mac) : ZERO_MAC,
        vipId,
        flags: b.flags,
      });
    }
    if (backends.length === 0) {
      this.dp.removeRing(vipId);
      this.vips.set(vipId, { spec, table: new Uint32Array(0) });
      return;
    }
    const order = buildMaglevTable(
      backends.map((b) => ({ key: b.address, weight: b.weight ?? 1 })),
      this.dp.ringSize,
    );
    const table = Uint32Array.from(order, (i) => backends[i]!.id);
    this.dp.setRing(vipId, table);
    this.vips.set(vipId, { spec, table });
  }

  /** The backend id the ring gives this flow, ignoring the connection table. */
  ringBackend(vipId: number, flow: Flow): number {
    const { spec, table } = this.vips.get(vipId)!;
    return table[flowHash(flowKey(flow), spec.flags ?? 0, this.config.hashSeed) % this.dp.ringSize]!;
  }

  hash(flow: Flow, flags = 0): number {
    return flowHash(flowKey(flow), flags, this.config.hashSeed);
  }

  run(frame: Buffer): { verdict: number; data: Buffer } {
    const { retval, data } = this.dp.program.testRun({ data: frame });
    return { verdict: retval, data };
  }

  /** Packet counts per outcome since the last call (non-zero ones only). */
  counterDelta(): CounterDelta {
    const now = this.dp.counters();
    const delta: CounterDelta = {};
    for (const name of OUTCOMES) {
      const d = now[name].packets - this.lastCounters[name].packets;
      if (d) delta[name] = d;
    }
    this.lastCounters = now;
    return delta;
  }

  close(): void {
    this.dp.close();
  }
}

export function familyOf(address: string): Family {
  return parseAddress(address).family;
}
