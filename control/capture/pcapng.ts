/**
 * pcapng (draft-ietf-opsawg-pcapng) as xlb capture writes it: a section header, one
 * Ethernet interface with nanosecond timestamps, an enhanced packet block per copy
 * with its comment, and an interface statistics block at the end; and the reader of
 * those blocks the CLI and tests use. Little-endian throughout.
 */

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const ISB = 0x00000005;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const LINKTYPE_ETHERNET = 1;

const OPT_END = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const ISB_STARTTIME = 2;
const ISB_ENDTIME = 3;
const ISB_IFRECV = 4;
const ISB_IFDROP = 5;
const ISB_OSDROP = 7;

const padded = (n: number) => (n + 3) & ~3;

/** One option: code, length, value padded to 4 bytes. */
function option(code: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + padded(value.length));
  out.writeUInt16LE(code, 0);
  out.writeUInt16LE(value.length, 2);
  value.copy(out, 4);
  return out;
}

const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

/** A timestamp as pcapng stores it: high 32 bits, then low 32 bits. */
const timestamp = (ns: bigint) => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(Number(ns >> 32n), 0);
  b.writeUInt32LE(Number(ns & 0xffffffffn), 4);
  return b;
};

function options(list: Buffer[]): Buffer {
  return list.length ? Buffer.concat([...list, option(OPT_END, Buffer.alloc(0))]) : Buffer.alloc(0);
}

/** A block: type, total length, body (padded), total length again. */
function block(type: number, body: Buffer): Buffer {
  const length = 12 + padded(body.length);
  const out = Buffer.alloc(length);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(length, 4);
  body.copy(out, 8);
  out.writeUInt32LE(length, length - 4);
  return out;
}

/** Section header and interface description: the start of every capture file. */
export function pcapngHeader(o: { snaplen: number; interfaceName: string }): Buffer {
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeUInt16LE(0, 6);
  shb.writeBigInt64LE(-1n, 8); // section length not given
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(LINKTYPE_ETHERNET, 0);
  idb.writeUInt32LE(o.snaplen, 4);
  const idbOptions = options([option(IF_NAME, Buffer.from(o.interfaceName)), option(IF_TSRESOL, Buffer.from([9]))]);
  return Buffer.concat([block(SHB, shb), block(IDB, Buffer.concat([idb, idbOptions]))]);
}

export interface PacketBlock {
  /** Nanoseconds since the epoch. */
  time: bigint;
  /** The bytes captured (at most the snaplen). */
  data: Buffer;
  /** The packet's length on the wire. */
  length: number;
  comment: string;
}

/** An enhanced packet block on interface 0. */
export function pcapngPacket(p: PacketBlock): Buffer {
  const head = Buffer.alloc(20);
  timestamp(p.time).copy(head, 4);
  head.writeUInt32LE(p.data.length, 12);
  head.writeUInt32LE(p.length, 16);
  const data = Buffer.alloc(padded(p.data.length));
  p.data.copy(data);
  return block(EPB, Buffer.concat([head, data, options([option(OPT_COMMENT, Buffer.from(p.comment))])]));
}

export interface CaptureStatistics {
  start: bigint;
  end: bigint;
  /** Packets the capture saw (copies written and dropped). */
  received: bigint;
  /** Copies the kernel lost (its buffer full). */
  lostInKernel: bigint;
  /** Packets the daemon dropped (its reader too slow). */
  droppedByDaemon: bigint;
}

/** The interface statistics block that ends a capture. */
export function pcapngStatistics(s: CaptureStatistics): Buffer {
  const head = Buffer.alloc(12);
  timestamp(s.end).copy(head, 4);
  return block(
    ISB,
    Buffer.concat([
      head,
      options([
        option(ISB_STARTTIME, timestamp(s.start)),
        option(ISB_ENDTIME, timestamp(s.end)),
        option(ISB_IFRECV, u64(s.received)),
        option(ISB_IFDROP, u64(s.lostInKernel)),
        option(ISB_OSDROP, u64(s.droppedByDaemon)),
      ]),
    ]),
  );
}

export type ReadBlock =
  | { type: 'packet'; time: bigint; data: Buffer; length: number; comment: string | null }
  | { type: 'statistics'; received: bigint; lostInKernel: bigint; droppedByDaemon: bigint }
  | { type: 'other'; code: number };

/** The options of a block body from `at`: code -> value. */
function readOptions(body: Buffer, at: number): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  while (at + 4 <= body.length) {
    const code = body.readUInt16LE(at);
    const length = body.readUInt16LE(at + 2);
    if (code === OPT_END) break;
    found.set(code, body.subarray(at + 4, at + 4 + length));
    at += 4 + padded(length);
  }
  return found;
}

/**
 * Splits pcapng bytes into whole blocks: the blocks read and the bytes left over (the
 * start of a block still to come). Throws on bytes that are no pcapng block.
 */
export function readBlocks(bytes: Buffer): { blocks: ReadBlock[]; rest: Buffer } {
  const blocks: ReadBlock[] = [];
  let at = 0;
  while (at + 12 <= bytes.length) {
    const code = bytes.readUInt32LE(at);
    const length = bytes.readUInt32LE(at + 4);
    if (length < 12 || length % 4) throw new Error(`pcapng: block of type ${code} at byte ${at} has length ${length}`);
    if (at + length > bytes.length) break;
    const body = bytes.subarray(at + 8, at + length - 4);
    at += length;
    if (code === EPB) {
      const captured = body.readUInt32LE(12);
      const time = (BigInt(body.readUInt32LE(4)) << 32n) | BigInt(body.readUInt32LE(8));
      const comment = readOptions(body, 20 + padded(captured)).get(OPT_COMMENT);
      blocks.push({
        type: 'packet',
        time,
        data: Buffer.from(body.subarray(20, 20 + captured)),
        length: body.readUInt32LE(16),
        comment: comment ? comment.toString('utf8') : null,
      });
    } else if (code === ISB) {
      const found = readOptions(body, 12);
      const count = (option: number) => found.get(option)?.readBigUInt64LE(0) ?? 0n;
      blocks.push({ type: 'statistics', received: count(ISB_IFRECV), lostInKernel: count(ISB_IFDROP), droppedByDaemon: count(ISB_OSDROP) });
    } else {
      blocks.push({ type: 'other', code });
    }
  }
  return { blocks, rest: Buffer.from(bytes.subarray(at)) };
}
