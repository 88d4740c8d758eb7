/**
 * The state file: desired state saved atomically (write, fsync, rename, fsync the
 * directory) with mode 0600 on every change, and validated when read back.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MiB, readRegularFile } from '../files.js';
import { emptyState } from './desired.js';
import { type Limits, validateState } from './invariants.js';
import { type StateFile, stateFileSchema, type StoredVip } from './schema.js';

export class StateFileError extends Error {}

/** Far above 100,000 backends' worth of JSON, far below what would exhaust memory. */
const MAX_STATE_FILE = 256 * MiB;

/**
 * A state document's text, checked by the schemas and every cross-record rule (with
 * `limits`, ids must fit them too); `where` names the document in the error, which
 * also names the field or record and the rule.
 */
export function parseState(text: string, where: string, limits?: Limits): StateFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(`${where} is not JSON: ${(error as Error).message}`);
  }
  const parsed = stateFileSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const field = first.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
    throw new StateFileError(`${where}: ${field || '(root)'}: ${first.message}`);
  }
  try {
    validateState(parsed.data, limits);
  } catch (error) {
    throw new StateFileError(`${where}: ${(error as Error).message}`);
  }
  return parsed.data;
}

/** Reads the state file; a missing file is an empty state, an invalid one an error naming the field or record and the rule. */
export function readStateFile(path: string, limits?: Limits): StateFile {
  // Two names for one file would be two state files to the locks, and every save (a rename) splits them.
  const stat = statSync(path, { throwIfNoEntry: false });
  const links = stat?.isFile() ? stat.nlink : 1; // anything but a file is refused below, by what it is
  if (links > 1)
    throw new StateFileError(`state file ${path} has ${links} hard links: xlb saves by rename, which breaks them; keep only one`);
  let text: string;
  try {
    text = readRegularFile(path, 'state file', MAX_STATE_FILE).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw error;
  }
  return parseState(text, `state file ${path}`, limits);
}

/** Each VIP's JSON, by object: changes replace only the VIPs they touch (the rest are
 * the same objects), so a save re-serialises one VIP, not 100,000 backends. */
const vipJson = new WeakMap<StoredVip, string>();

/** JSON.stringify(state), byte for byte, from per-VIP pieces kept between saves. */
export function stateText(state: StateFile): string {
  const vips = state.vips.map((vip) => {
    let text = vipJson.get(vip);
    if (text === undefined) vipJson.set(vip, (text = JSON.stringify(vip)));
    return text;
  });
  return JSON.stringify({ ...state, vips: [] }).replace('"vips":[]', () => `"vips":[${vips.join(',')}]`);
}

export function writeStateFile(path: string, state: StateFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    try {
      // Compact: the file is rewritten on every change and can hold 100k backends.
      writeSync(fd, stateText(state) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    // A full or failing disk leaves no half-written copy beside the state file.
    rmSync(tmp, { force: true });
    throw error;
  }
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
