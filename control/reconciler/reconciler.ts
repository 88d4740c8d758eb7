/**
 * Writes VIP plans into the data plane, touching only what changed since the last
 * write: backend records first (a ring never names a missing record), then rings
 * (built by Maglev, swapped atomically), then VIP records; removals in the reverse
 * order. Work is per VIP, so a change costs what its VIP costs, not the whole
 * configuration. The first apply also clears whatever pinned maps hold beyond the
 * plan. What follows from the VIPs written (each address's VIP count, each backend's
 * ring slots) is derived from them, never adjusted by increments, so no restart can
 * make it drift.
 */
import { formatAddress, parseAddress } from '../net/address.js';
import { protocolName, protocolNumber } from '../dataplane/codec.js';
import type { DataplanePort } from '../dataplane/port.js';
import type { BackendRecord, VipAddress, VipMapKey } from '../dataplane/records.js';
import { buildMaglevTable } from '../maglev/maglev.js';
import type { VipPlan } from './plan.js';

interface WrittenVip {
  /** null: a ring with no VIP record (found when adopting). */
  keyText: string | null;
  record: string;
  ring: string;
  /** backend id -> what its record holds */
  backends: Map<number, string>;
  /** backend id -> slots it holds in the ring written (members with none are absent) */
  slots: ReadonlyMap<number, number>;
}

/** A VIP during apply: its key known, and the backends its plan keeps. */
type VipBeingWritten = WrittenVip & { keyText: string; planned: Set<number> };

const NO_SLOTS: ReadonlyMap<number, number> = new Map();

/**
 * A VIP key as text. Addresses in the state are canonical (the schema formats them as
 * formatAddress does), so a key found in the maps and the same key planned are equal.
 */
const keyTextOf = (protocol: string, address: string, port: number) => JSON.stringify([protocol, address, port]);

export class Reconciler {
  private readonly vips = new Map<number, WrittenVip>();
  /** Backend records found in pinned maps and not yet claimed by a plan. */
  private readonly adoptedBackends = new Set<number>();
  /** VIP address (canonical text) -> keys of the VIP records written on it: its xlb_vipaddr_v3 count. */
  private readonly addresses = new Map<string, { address: VipAddress; keys: Set<string> }>();
  private adopted = false;
  /** Set by adopt until a full apply has removed VIP records no plan accounts for. */
  private strayRecords = false;
  private ringScratch = new Uint32Array(0);

  constructor(private readonly dp: DataplanePort) {}

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
        const state = states[i]!;
        const ring = JSON.stringify(plan.ringMembers.map((b) => [b.id, b.address, b.weight]));
        if (state.ring === ring) continue;
        if (plan.ringMembers.length) {
          const built = this.buildRing(plan);
          rings.set(plan.vip.id, built.ring);
          state.slots = built.slots;
        } else {
          this.dp.removeRing(plan.vip.id);
          state.slots = NO_SLOTS;
        }
        state.ring = ring;
      }
      rings.commit();
    } finally {
      rings.close();
    }
    // 3. VIP records, then records of backends that left (the rings no longer name them).
    for (const [i, plan] of selected.entries()) this.writeVip(plan, states[i]!);

    if (!scope) {
      for (const id of this.adoptedBackends) this.clearBackend(id);
      this.adoptedBackends.clear();
      if (this.strayRecords) this.removeStrayVipRecords();
    }
  }

  /** Slots each backend of a VIP holds in the ring written for it (none: absent). */
  slots(vipId: number): ReadonlyMap<number, number> {
    return this.vips.get(vipId)?.slots ?? NO_SLOTS;
  }

  /** Writes a VIP's changed backend records; returns its written state (ring and record not yet updated). */
  private writeBackends(plan: VipPlan): VipBeingWritten {
    const id = plan.vip.id;
    const keyText = keyTextOf(plan.vip.protocol, plan.vip.address, plan.vip.port);
    let written = this.vips.get(id);
    if (written && written.keyText !== keyText) {
      this.removeVip(id);
      written = undefined;
    }
    const state = written
      ? { ...written, keyText }
      : { keyText, record: '', ring: '', backends: new Map<number, string>(), slots: NO_SLOTS };
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

  private writeVip(plan: VipPlan, state: VipBeingWritten): void {
    const id = plan.vip.id;
    const record = JSON.stringify([plan.flags, plan.forwarding]);
    this.countAddress(plan.vip.address, state.keyText, true); // before the record: a packet that finds the VIP finds its address counted
    if (state.record !== record) {
      if (!this.vips.has(id)) this.dp.resetVipStats(id); // a new VIP on a reused id starts from zero
      this.dp.setVip(this.vipKey(plan.vip), { id, flags: plan.flags, forwarding: plan.forwarding });
    }
    for (const backendId of [...state.backends.keys()]) {
      if (state.planned.has(backendId)) continue;
      this.clearBackend(backendId);
      state.backends.delete(backendId);
    }
    this.vips.set(id, { keyText: state.keyText, record, ring: state.ring, backends: state.backends, slots: state.slots });
  }

  private vipKey(vip: { protocol: 'tcp' | 'udp'; address: string; port: number }): VipMapKey {
    const { family, bytes } = parseAddress(vip.address);
    return { family, address: bytes, port: vip.port, proto: protocolNumber(vip.protocol) };
  }

  /**
   * Counts the VIP record of `keyText` on its address, or stops counting it, and writes
   * the address's count (the number of records counted there) when that changed.
   */
  private countAddress(address: string, keyText: string, counted: boolean): void {
    if ((this.addresses.get(address)?.keys.has(keyText) ?? false) === counted) return;
    const entry = this.addressEntry(address);
    if (counted) entry.keys.add(keyText);
    else entry.keys.delete(keyText);
    if (entry.keys.size) {
      this.dp.setVipAddress(entry.address, entry.keys.size);
    } else {
      this.addresses.delete(address);
      this.dp.removeVipAddress(entry.address);
    }
  }

  /** The entry of a VIP address, made when missing. */
  private addressEntry(address: string): { address: VipAddress; keys: Set<string> } {
    const existing = this.addresses.get(address);
    if (existing) return existing;
    const { family, bytes } = parseAddress(address);
    const entry = { address: { family, address: bytes }, keys: new Set<string>() };
    this.addresses.set(address, entry);
    return entry;
  }

  /** The VIP's ring of backend ids, in an array reused by the next build, and each member's slots. */
  private buildRing(plan: VipPlan): { ring: Uint32Array; slots: Map<number, number> } {
    const members = plan.ringMembers;
    if (this.ringScratch.length !== this.dp.ringSize) this.ringScratch = new Uint32Array(this.dp.ringSize);
    const ring = buildMaglevTable(
      members.map((b) => ({ key: b.address, weight: b.weight })),
      this.dp.ringSize,
      this.ringScratch,
    );
    const ids = Uint32Array.from(members, (b) => b.id);
    const counts = new Uint32Array(members.length);
    // Member index -> backend id in place; a plain loop (a callback per slot made this
    // 5 s of a 1000-VIP start-up).
    for (let slot = 0; slot < ring.length; slot++) {
      const member = ring[slot]!;
      counts[member]!++;
      ring[slot] = ids[member]!;
    }
    const slots = new Map<number, number>();
    for (const [member, count] of counts.entries()) if (count) slots.set(ids[member]!, count);
    return { ring, slots };
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
      const current = this.dp.getVip(key);
      // The key may since have been given to another id (adoption): leave that record, counted.
      if (current?.id === id) this.dp.removeVip(key);
      if (!current || current.id === id) this.countAddress(address, written.keyText, false); // after the record: see writeVip
    }
    this.dp.removeRing(id);
    for (const backendId of written?.backends.keys() ?? []) this.clearBackend(backendId);
    this.vips.delete(id);
  }

  /** A key found in the maps: its address and key as text. */
  private static foundKey(key: VipMapKey): { address: string; keyText: string } {
    const address = formatAddress(key.family, key.address);
    return { address, keyText: keyTextOf(protocolName(key.proto), address, key.port) };
  }

  /**
   * Records what pinned maps already hold, so the first full apply rewrites what the
   * plan keeps (identical content: flows and rings carry on) and removes the rest.
   * Nothing is cleared first: a restart never stops forwarding.
   */
  private adopt(): void {
    const adoptedVip = (keyText: string | null): WrittenVip => ({
      keyText,
      record: 'adopted',
      ring: 'adopted',
      backends: new Map(),
      slots: NO_SLOTS,
    });
    for (const id of this.dp.ringIds()) this.vips.set(id, adoptedVip(null));
    for (const { key, vip } of this.dp.listVips()) {
      const { address, keyText } = Reconciler.foundKey(key);
      this.vips.set(vip.id, adoptedVip(keyText));
      this.addressEntry(address).keys.add(keyText);
    }
    // Address counts from the records the maps hold, whatever counts were pinned (a
    // map of records pinned anew, or one of counts, leaves them disagreeing).
    for (const { address, keys } of this.addresses.values()) this.dp.setVipAddress(address, keys.size);
    for (const { family, address } of this.dp.listVipAddresses()) {
      if (!this.addresses.has(formatAddress(family, address))) this.dp.removeVipAddress({ family, address });
    }
    for (const id of this.dp.usedBackendIds()) this.adoptedBackends.add(id);
    this.adopted = true;
    this.strayRecords = true;
  }

  /**
   * After the first full apply: removes VIP records found when adopting that no
   * written VIP accounts for (two records under one id, the other left behind).
   */
  private removeStrayVipRecords(): void {
    for (const { key, vip } of this.dp.listVips()) {
      const { address, keyText } = Reconciler.foundKey(key);
      if (this.vips.get(vip.id)?.keyText === keyText) continue;
      this.dp.removeVip(key);
      this.countAddress(address, keyText, false);
    }
    this.strayRecords = false;
  }
}
