/** The backend-side decapsulation program: which outer addresses it strips, its counters. */
import { BpfObject, type BpfMap, type BpfProgram, type XdpMode } from '@xlb/native';
import { addrCodec, DECAP_OBJECT, DECAP_OUTCOMES, type DecapOutcome, MAPS, PROGRAMS, trafficCodec } from './codec.js';
import { formatAddress, parseAddress } from '../net/address.js';
import { attachProgram } from './attach.js';
import { removeStalePins } from './pins.js';
import type { Traffic } from './records.js';
import { sumPerCpu, u32Bytes } from './struct.js';

const addressKey = (address: string) => {
  const { family, bytes } = parseAddress(address);
  return addrCodec.encode({ addr: bytes, family });
};

export class Decapsulator {
  readonly program: BpfProgram;
  private readonly object: BpfObject;
  private readonly addresses: BpfMap;
  private readonly counterMap: BpfMap;

  private constructor(object: BpfObject) {
    this.object = object;
    this.program = object.program(PROGRAMS.decap);
    this.addresses = object.map(MAPS.decapAddresses);
    this.counterMap = object.map(MAPS.decapCounters);
  }

  static open(options: { objectPath?: string; pinDir?: string } = {}): Decapsulator {
    if (options.pinDir) removeStalePins(options.pinDir);
    return new Decapsulator(new BpfObject(options.objectPath ?? DECAP_OBJECT, { pinDir: options.pinDir }));
  }

  /** The addresses now decapsulated. */
  addressList(): string[] {
    const out: string[] = [];
    for (let key = this.addresses.nextKey(null); key; key = this.addresses.nextKey(key)) {
      const { addr, family } = addrCodec.decode(key);
      out.push(formatAddress(family, addr));
    }
    return out;
  }

  /** Decapsulate packets whose outer destination is this address. */
  addAddress(address: string): void {
    this.addresses.update(addressKey(address), u32Bytes(1));
  }

  removeAddress(address: string): boolean {
    return this.addresses.delete(addressKey(address));
  }

  counters(): Record<DecapOutcome, Traffic> {
    return Object.fromEntries(
      DECAP_OUTCOMES.map((name, i) => [name, sumPerCpu(trafficCodec, this.counterMap.lookup(u32Bytes(i))!)]),
    ) as Record<DecapOutcome, Traffic>;
  }

  attach(ifname: string, mode: XdpMode = 'native'): void {
    attachProgram(ifname, this.program, mode);
  }

  close(): void {
    this.addresses.close();
    this.counterMap.close();
    this.program.close();
    this.object.close();
  }
}
