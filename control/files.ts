/**
 * Files an operator names (state, token, config, certificates): regular files only,
 * read up to a bound, so a FIFO, a device or a huge file is refused instead of
 * blocking or filling memory. Opened O_NONBLOCK so that opening a FIFO cannot wait
 * for a writer; symlinks are followed.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export const KiB = 1024;
export const MiB = 1024 * KiB;

const sizeText = (bytes: number) =>
  bytes % MiB === 0 ? `${bytes / MiB} MiB` : bytes % KiB === 0 ? `${bytes / KiB} KiB` : `${bytes} bytes`;

function fileKind(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

/** The bytes of `path`, which must be a regular file of at most `maxBytes`; `what` names it in errors ("token file"). */
export function readRegularFile(path: string, what: string, maxBytes: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`${what} ${path}: not a regular file (${fileKind(stat)})`);
    const tooLarge = () => new Error(`${what} ${path}: larger than ${sizeText(maxBytes)}`);
    if (stat.size > maxBytes) throw tooLarge();
    // Read to the end, not to the stat size: the file may grow while it is read.
    let buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (let n = 1; n > 0 && length <= maxBytes; length += n) {
      if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.alloc(Math.min(buffer.length, maxBytes + 1 - length))]);
      n = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > maxBytes) throw tooLarge();
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}
