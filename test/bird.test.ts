/**
 * birdc against a control socket: "no BIRD answers" (no socket, or nobody listening on
 * it) means nothing to stop; any other failure, such as a missing birdc, is an error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { stopBird } from '../control/bgp/bird.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xlb-bird-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('stopping with no control socket, or nobody listening on it, has nothing to stop', async () => {
  await expect(stopBird(dir)).resolves.toBeUndefined();
  writeFileSync(join(dir, 'bird.ctl'), '');
  await expect(stopBird(dir)).resolves.toBeUndefined();
});

test('stopping without birdc on the PATH fails naming the command', async () => {
  const path = process.env.PATH;
  process.env.PATH = dir;
  try {
    await expect(stopBird(dir)).rejects.toThrow(/birdc -s .*bird\.ctl down: .*ENOENT/);
  } finally {
    process.env.PATH = path;
  }
});
