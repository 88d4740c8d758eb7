/**
 * Writes VIP plans into the data plane, touching only what changed since the last
 * write: backend records first (a ring never names a missing record), then rings
 * (built by Maglev, swapped atomically), then VIP records; removals in the reverse
 * order. Work is per VIP, so a change costs what its VIP costs, not the whole
 * configuration. The first apply also clears whatever pinned maps hold beyond the
 * plan.
 */
import { formatAddress, parseAddress } from '../dataplane/address.js';
import type { BackendRecord, Dataplane } from '../dataplane/dataplane.js';
import { buildMaglevTable } from '../maglev/maglev.js';
import type { VipPlan } from './plan.js';

interface WrittenVip {
  /** null: a ring with no VIP record (found when adopting). */
  keyText: string | null;
  record: string;
  ring: string;
  /** backend id -> what its record holds */
  backends: Map<number, string>;
}

export class Reconciler {
  private readonly vips = new Map<number, WrittenVip>();
  /** Backend records found in pinned maps and not yet claimed by a plan. */
  private readonly adoptedBackends = new Set<number>();
  private adopted = false;
  private ringScratch = new Uint32Array(0);

  constructor(private readonly dp: Dataplane) {}

  /**
   * Makes the data plane hold `plans`. With `scope`, only those VIP ids are looked at
   * (their plan in `plans`, or their removal when absent); without, everything is.
   */
  apply(plans: Iterable<VipPlan>, scope?: ReadonlySet<number>): void {
    if (!this.adopted) this.adopt();
    const selected = [...plans].filter((plan) => !scope || scope.has(plan.vip.id));
    const wanted = new Set(selected.map((plan) => plan.vip.id));
    for (const id of scope ?? [...this.vips.keys()]) {
      if (!wanted.has(id) && this.vips.has(id)) this.removeVip(id);
    }

    // 1. Backend records, so no ring names a missing one.
    const states = selected.map((plan) => this.writeBackends(plan));
    // 2. Rings, all swapped in by one batch. Each is built in one reused array and
    // goes into its new map at once, so a thousand VIPs' start-up holds one table,
    // not a thousand.
    const rings = this.dp.ringBatch();
    try {
      for (const [i, plan] of selected.entries()) {
        const ring = JSON.stringify(plan.ringMembers.map((b) => [b.id, b.address, b.weight]));
        if (states[i].ring === ring) continue;
        if (plan.ringMembers.length) rings.set(plan.vip.id, this.buildRing(plan));
        else this.dp.removeRing(plan.vip.id);
        states[i].ring = ring;
      }
      rings.commit();
    } finally {
      rings.close();
    }
    // 3. VIP records, then records of backends that left (the rings no longer name them).
    for (const [i, plan] of selected.entries()) this.writeVip(plan, states[i]);

    if (!scope) {
      for (const id of this.adoptedBackends) this.clearBackend(id);
      this.adoptedBackends.clear();
    }
  }

  /** Writes a VIP's changed backend records; returns its written state (ring and record not yet updated). */
  private writeBackends(plan: VipPlan): WrittenVip & { planned: Set<number> } {
    const id = plan.vip.id;
    const keyText = JSON.stringify([plan.vip.protocol, plan.vip.address, plan.vip.port]);
    let written = this.vips.get(id);
    if (written && written.keyText !== keyText) {
      this.removeVip(id);
      written = undefined;
    }
    const state = written ? { ...written, keyText } : { keyText, record: '', ring: '', backends: new Map<number, string>() };
    const planned = new Set<number>();
    const changed = new Map<number, BackendRecord>();
    const records = new Map<number, string>();
    for (const b of plan.backends) {
      planned.add(b.id);
      this.adoptedBackends.delete(b.id);
      const record = JSON.stringify([b.address, b.mac.toString('hex'), b.flags]);
      if (state.backends.get(b.id) === record) continue;
      changed.set(b.id, { family: b.family, address: parseAddress(b.address).bytes, mac: b.mac, vipId: id, flags: b.flags });
      records.set(b.id, record);
    }
    this.dp.setBackends(changed); // one batch per VIP
    for (const [backendId, record] of records) state.backends.set(backendId, record);
    return { ...state, planned, record: written?.record ?? '' };
  }

  private writeVip(plan: VipPlan, state: WrittenVip & { planned: Set<number> }): void {
    const id = plan.vip.id;
    const record = JSON.stringify([plan.flags, plan.forwarding]);
    if (state.record !== record) {
      if (!this.vips.has(id)) this.dp.resetVipStats(id); // a new VIP on a reused id starts from zero
      this.dp.setVip(this.vipKey(plan.vip), { id, flags: plan.flags, forwarding: plan.forwarding });
    }
    for (const backendId of [...state.backends.keys()]) {
      if (state.planned.has(backendId)) continue;
      this.clearBackend(backendId);
      state.backends.delete(backendId);
    }
    this.vips.set(id, { keyText: state.keyText, record, ring: state.ring, backends: state.backends });
  }

  private vipKey(vip: { protocol: string; address: string; port: number }) {
    const { family, bytes } = parseAddress(vip.address);
    return { family, address: bytes, port: vip.port, proto: vip.protocol === 'tcp' ? 6 : 17 };
  }

  /** The VIP's ring of backend ids, in an array reused by the next build. */
  private buildRing(plan: VipPlan): Uint32Array {
    const members = plan.ringMembers;
    if (this.ringScratch.length !== this.dp.ringSize) this.ringScratch = new Uint32Array(this.dp.ringSize);
    const ring = buildMaglevTable(members.map((b) => ({ key: b.address, weight: b.weight })), this.dp.ringSize, this.ringScratch);
    const ids = Uint32Array.from(members, (b) => b.id);
    // Member index -> backend id in place; a plain loop (a callback per slot made this
    // 5 s of a 1000-VIP start-up).
    for (let slot = 0; slot < ring.length; slot++) ring[slot] = ids[ring[slot]];
    return ring;
  }

  private clearBackend(id: number): void {
    this.dp.removeBackend(id);
    this.dp.resetBackendStats(id);
  }

  private removeVip(id: number): void {
    const written = this.vips.get(id);
    if (written?.keyText) {
      const [protocol, address, port] = JSON.parse(written.keyText);
      const key = this.vipKey({ protocol, address, port });
      // The key may since have been given to another id (adoption): leave that one.
      if (this.dp.getVip(key)?.id === id) this.dp.removeVip(key);
    }
    this.dp.removeRing(id);
    for (const backendId of written?.backends.keys() ?? []) this.clearBackend(backendId);
    this.vips.delete(id);
  }

  /**
   * Records what pinned maps already hold, so the first full apply rewrites what the
   * plan keeps (identical content: flows and rings carry on) and removes the rest.
   * Nothing is cleared first: a restart never stops forwarding.
   */
  private adopt(): void {
    for (const id of this.dp.ringIds()) this.vips.set(id, { keyText: null, record: 'adopted', ring: 'adopted', backends: new Map() });
    for (const { key, vip } of this.dp.listVips()) {
      const protocol = key.proto === 6 ? 'tcp' : 'udp';
      const address = formatAddress(key.family, key.address);
      this.vips.set(vip.id, { keyText: JSON.stringify([protocol, address, key.port]), record: 'adopted', ring: 'adopted', backends: new Map() });
    }
    for (const id of this.dp.usedBackendIds()) this.adoptedBackends.add(id);
    this.adopted = true;
  }
}
