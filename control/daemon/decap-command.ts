/**
 * `xlb decap` on a backend: attach xlb_decap to an interface with its address map
 * pinned (so a later run replaces the addresses and the program atomically), or
 * remove it again. Like `xlb down`, it never touches another XDP program.
 */
import type { XdpMode } from '@xlb/native';
import { PROGRAMS } from '../dataplane/codec.js';
import { attachedProgramName, detachOwnProgram } from '../dataplane/attach.js';
import { Decapsulator } from '../dataplane/decapsulator.js';
import { checkBpffs, DECAP_PINS, makeDirs, removePins } from '../dataplane/pins.js';
import { addressSchema } from '../state/schema.js';

/** Returns the addresses now decapsulated. */
export function installDecap(options: { iface: string; addresses: string[]; xdpMode: XdpMode; bpffs: string }): string[] {
  const addresses = options.addresses.map((a) => {
    const parsed = addressSchema.safeParse(a);
    if (!parsed.success) throw new Error(`--address: not an IPv4 or IPv6 address: ${JSON.stringify(a)}`);
    return parsed.data;
  });
  checkBpffs(options.bpffs);
  const current = attachedProgramName(options.iface, options.xdpMode);
  if (current && current !== PROGRAMS.decap) throw new Error(`${options.iface} runs XDP program ${current}, not xlb_decap; leaving it`);
  makeDirs(options.bpffs);
  const decap = Decapsulator.open({ pinDir: options.bpffs });
  try {
    for (const old of decap.addressList()) if (!addresses.includes(old)) decap.removeAddress(old);
    for (const address of addresses) decap.addAddress(address);
    decap.attach(options.iface, options.xdpMode);
    return decap.addressList().sort();
  } finally {
    decap.close();
  }
}

/** Detaches xlb_decap and removes its pins; the directory goes only when nothing else is left in it. */
export function removeDecap(options: { iface: string; xdpMode: XdpMode; bpffs: string }): { detached: boolean } {
  checkBpffs(options.bpffs);
  const detached = detachOwnProgram(options.iface, options.xdpMode, PROGRAMS.decap);
  removePins(options.bpffs, DECAP_PINS);
  return { detached };
}
