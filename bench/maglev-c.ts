/**
 * The C yardstick of the Maglev bench (bench/maglev.c): compiled with gcc -O2, it
 * builds the same tables as buildMaglevTable for keys 198.18.x.y and reports its median
 * build time and a digest of the table, so the bench can check both sides built the
 * same thing before comparing their speed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MaglevBackend } from '../control/maglev/maglev.js';
import { packagePath } from '../control/paths.js';

/** The bench's N backends, as bench/maglev.c names them. */
export const benchBackends = (n: number): MaglevBackend[] =>
  Array.from({ length: n }, (_, i) => ({ key: `198.18.${i >> 8}.${i & 255}`, weight: 1 }));

/** FNV-1a over a table's entries, as bench/maglev.c prints it. */
export function tableDigest(table: Uint32Array): number {
  let digest = 0x811c9dc5;
  for (const entry of table) digest = Math.imul(digest ^ entry, 0x01000193) >>> 0;
  return digest;
}

export interface CBuild {
  /** The median milliseconds of `repeats` builds of N backends into M slots, and the table's digest. */
  run(n: number, m: number, repeats: number): { ms: number; digest: number };
  close(): void;
}

export function compileCBuild(): CBuild {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-maglev-'));
  const binary = join(dir, 'maglev');
  try {
    execFileSync('gcc', ['-O2', '-o', binary, packagePath('bench/maglev.c')]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    run(n, m, repeats) {
      const output = execFileSync(binary, [String(n), String(m), String(repeats)], { encoding: 'utf8' }).trim();
      const [ms, digest] = output.split(' ').map(Number);
      if (ms === undefined || digest === undefined)
        throw new Error(`bench/maglev.c printed ${JSON.stringify(output)}, expected "MS DIGEST"`);
      return { ms, digest };
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
