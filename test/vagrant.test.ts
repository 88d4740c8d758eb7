/** The Vagrantfile is valid Vagrant configuration. */
import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { PACKAGE_ROOT } from '../control/paths.js';

test('vagrant validate passes', () => {
  const out = execFileSync('vagrant', ['validate'], { cwd: PACKAGE_ROOT, encoding: 'utf8', env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
  expect(out).toMatch(/Vagrantfile validated successfully/);
});
