/**
 * A SYN flood from many sources, sent out of a veth into its peer at the generator's
 * full rate: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs bench_harness
 * (bpf/bench/bench.bpf.c), which rewrites each frame's source address to the next of
 * 198.18.128.0/17 and tail-calls bench_generate, which transmits it (XDP_TX).
 */
import { BpfObject, ifNameToIndex } from '@xlb/native';
import { packagePath } from '../../control/paths.js';
import { inNamespace } from '../../scripts/lab/netns.js';
import { ETH_P_IP, ethernet, ipv4, PROTO, tcp } from './packet.js';

const BENCH_OBJECT = packagePath('bpf/build/bench.bpf.o');
const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
/** The flood's sources, 198.18.128.0/17: the harness XORs its flow number into the low SOURCE_BITS of the first. */
const FIRST_SOURCE = '198.18.128.0';
const SOURCE_BITS = 15;
/** One live-frames run: every source once, from one source port. */
const RUN = 1 << SOURCE_BITS;
/** Each run takes the next source port from here (below the ephemeral ports real clients use). */
const FIRST_SOURCE_PORT = 1024;
const SOURCE_PORTS = 32768 - FIRST_SOURCE_PORT;
/** Where the harness writes its flow number: the IPv4 source address of an Ethernet frame. */
const SOURCE_OFFSET = 14 + 12;
const IPV4_HEADER_OFFSET = 14;
/** Where the template starts in bench_packet_v1's value (after six u32 fields). */
const PACKET_HEADER = 24;

export interface FloodTarget {
  address: string;
  port: number;
}

export class SynFlood {
  private readonly object = new BpfObject(BENCH_OBJECT);
  private readonly harness = this.object.program('bench_harness');
  private readonly generate = this.object.program('bench_generate');
  private readonly packet = this.object.map('bench_packet_v1');
  private readonly target = this.object.map('bench_target_v1');
  private readonly iteration = this.object.map('bench_iteration_v1');

  /** Sends out of `dev` in namespace `ns` to the receiving end's `mac`, each run to the next of `targets`. */
  constructor(
    private readonly ns: string,
    private readonly dev: string,
    private readonly mac: string,
    private readonly targets: FloodTarget[],
  ) {
    this.target.update(Buffer.alloc(4), this.generate);
  }

  /**
   * Floods until at least `frames` SYNs are sent and `until` (if given) has settled,
   * a run of RUN frames at a time, each to the next target from the next source port;
   * the event loop runs between runs. Resolves to the SYNs sent (the sender may drop some when the
   * receiver falls behind).
   */
  async run(frames: number, until?: Promise<unknown>): Promise<number> {
    let settled = until === undefined;
    const settle = () => (settled = true);
    void until?.then(settle, settle);
    const ifindex = inNamespace(this.ns, () => ifNameToIndex(this.dev));
    const start = this.sent();
    for (let round = 0; this.sent() - start < frames || !settled; round++) {
      const data = this.load(this.targets[round % this.targets.length]!, FIRST_SOURCE_PORT + (round % SOURCE_PORTS));
      try {
        inNamespace(this.ns, () => this.harness.testRun({ data, repeat: RUN, flags: BPF_F_TEST_XDP_LIVE_FRAMES, ifindex }));
      } catch (error) {
        // A signal to this process (a child exiting) ends a run early; the count holds what it sent.
        if ((error as { code?: string }).code !== 'EINTR') throw error;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return this.sent() - start;
  }

  /** Frames the harness has sent since it was loaded (its iteration count). */
  private sent(): number {
    return Number(this.iteration.lookup(Buffer.alloc(4))!.readBigUInt64LE(0));
  }

  /** The template SYN to `to` from source port `port` into bench_packet_v1; the frame. */
  private load(to: FloodTarget, port: number): Buffer {
    const segment = tcp({ src: FIRST_SOURCE, dst: to.address, sport: port, dport: to.port, flags: 'S' });
    const packet = ipv4({ src: FIRST_SOURCE, dst: to.address, protocol: PROTO.TCP, payload: segment });
    const frame = ethernet(this.mac, '02:00:00:00:00:01', ETH_P_IP, packet);
    // The harness copies 8-byte words; the frame at least the Ethernet minimum.
    const data = Buffer.concat([frame, Buffer.alloc(Math.max(64, Math.ceil(frame.length / 8) * 8) - frame.length)]);
    const value = Buffer.alloc(this.packet.info.valueSize);
    value.writeUInt32LE(data.length, 0);
    value.writeUInt32LE(SOURCE_OFFSET, 4);
    value.writeUInt32LE(RUN, 8);
    value.writeUInt32LE(IPV4_HEADER_OFFSET, 12);
    data.copy(value, PACKET_HEADER);
    this.packet.update(Buffer.alloc(4), value);
    return data;
  }

  close(): void {
    for (const x of [this.harness, this.generate, this.packet, this.target, this.iteration]) x.close();
    this.object.close();
  }
}
