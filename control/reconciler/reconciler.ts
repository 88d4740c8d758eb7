/**
 * Writes VIP plans into the data plane, touching only what changed since the last
 * write: backend records first (a ring never names a missing record), then rings
 * (built by Maglev, swapped atomically), then VIP records; removals in the reverse
 * order. The first apply also clears whatever pinned maps hold beyond the plan.
 */
import { formatAddress, parseAddress } from '../dataplane/address.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { buildMaglevTable } from '../maglev/maglev.js';
import type { VipPlan } from './plan.js';

interface WrittenVip {
  /** null: a ring with no VIP record (found when adopting). */
  keyText: string | null;
  record: string;
  ring: string;
}

export class Reconciler {
  private readonly vips = new Map<number, WrittenVip>();
  private readonly backends = new Map<number, string>();
  private adopted = false;

  constructor(private readonly dp: Dataplane) {}

  apply(plans: VipPlan[]): void {
    if (!this.adopted) this.adopt();

    const wantedBackends = new Map<number, string>();
    for (const plan of plans) {
      for (const b of plan.backends) {
        wantedBackends.set(b.id, JSON.stringify([plan.vip.id, b.address, b.mac.toString('hex'), b.flags]));
      }
    }
    for (const plan of plans) {
      for (const b of plan.backends) {
        const record = wantedBackends.get(b.id)!;
        if (this.backends.get(b.id) === record) continue;
        this.dp.setBackend(b.id, { family: b.family, address: parseAddress(b.address).bytes, mac: b.mac, vipId: plan.vip.id, flags: b.flags });
        this.backends.set(b.id, record);
      }
    }

    const wantedVips = new Set<number>();
    for (const plan of plans) {
      wantedVips.add(plan.vip.id);
      const written = this.vips.get(plan.vip.id);
      const keyText = JSON.stringify([plan.vip.protocol, plan.vip.address, plan.vip.port]);
      if (written && written.keyText !== keyText) this.removeVip(plan.vip.id);
      const ring = JSON.stringify(plan.ringMembers.map((b) => [b.id, b.address, b.weight]));
      const current = this.vips.get(plan.vip.id);
      if (current?.ring !== ring) {
        if (plan.ringMembers.length) this.dp.setRing(plan.vip.id, this.buildRing(plan));
        else this.dp.removeRing(plan.vip.id);
      }
      const record = JSON.stringify([plan.flags, plan.forwarding]);
      if (current?.record !== record || current.keyText !== keyText) {
        if (!current) this.dp.resetVipStats(plan.vip.id); // a new VIP on a reused id starts from zero
        this.dp.setVip(this.vipKey(plan.vip), { id: plan.vip.id, flags: plan.flags, forwarding: plan.forwarding });
      }
      this.vips.set(plan.vip.id, { keyText, record, ring });
    }

    for (const id of [...this.vips.keys()]) if (!wantedVips.has(id)) this.removeVip(id);
    for (const id of [...this.backends.keys()]) {
      if (wantedBackends.has(id)) continue;
      this.dp.removeBackend(id);
      this.dp.resetBackendStats(id);
      this.backends.delete(id);
    }
  }

  private vipKey(vip: { protocol: string; address: string; port: number }) {
    const { family, bytes } = parseAddress(vip.address);
    return { family, address: bytes, port: vip.port, proto: vip.protocol === 'tcp' ? 6 : 17 };
  }

  private buildRing(plan: VipPlan): Uint32Array {
    const members = plan.ringMembers;
    const order = buildMaglevTable(members.map((b) => ({ key: b.address, weight: b.weight })), this.dp.ringSize);
    return Uint32Array.from(order, (i) => members[i].id);
  }

  private removeVip(id: number): void {
    const written = this.vips.get(id);
    if (written?.keyText) {
      const [protocol, address, port] = JSON.parse(written.keyText);
      this.dp.removeVip(this.vipKey({ protocol, address, port }));
    }
    this.dp.removeRing(id);
    this.vips.delete(id);
  }

  /**
   * Records what pinned maps already hold, so the first apply rewrites what the plan
   * keeps (identical content: flows and rings carry on) and removes the rest. Nothing
   * is cleared first: a restart never stops forwarding.
   */
  private adopt(): void {
    for (const id of this.dp.ringIds()) this.vips.set(id, { keyText: null, record: 'adopted', ring: 'adopted' });
    for (const { key, vip } of this.dp.listVips()) {
      const protocol = key.proto === 6 ? 'tcp' : 'udp';
      const address = formatAddress(key.family, key.address);
      this.vips.set(vip.id, { keyText: JSON.stringify([protocol, address, key.port]), record: 'adopted', ring: 'adopted' });
    }
    for (const id of this.dp.usedBackendIds()) this.backends.set(id, 'adopted');
    this.adopted = true;
  }
}
