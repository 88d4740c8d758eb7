/** The Vagrantfile is valid Vagrant configuration. */
import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { PACKAGE_ROOT } from '../control/paths.js';

// --ignore-provider: a machine without VirtualBox or libvirt (CI's) has no usable
// provider, and plain `vagrant validate` then fails before reading the file. The
// provider blocks go unchecked; everything else (box, network, folders, provisioners)
// is validated.
test('vagrant validate passes', () => {
  const out = execFileSync('vagrant', ['validate', '--ignore-provider'], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' },
  });
  expect(out).toMatch(/Vagrantfile validated successfully/);
});
