/**
 * A check type for tests that answers as the test says: it fails while its backend's
 * address is in `failing`, so failures and recoveries come without a network.
 * Registered on import: import this before anything that loads the schemas, which
 * take their check types from the registry when they load.
 */
import { defineCheckType } from '../../../control/checks/check-type.js';
import { checkTypes } from '../../../control/checks/registry.js';

/** Backend addresses whose checks fail. */
export const failing = new Set<string>();

/** Backend addresses probed, in order. */
export const probed: string[] = [];

export const SWITCH_CHECK = 'switch-test';

checkTypes.set(
  SWITCH_CHECK,
  defineCheckType({
    name: SWITCH_CHECK,
    description: 'throwaway: fails while its address is in the test set',
    options: {},
    protocol: 'tcp',
    probe: async (spec) => {
      probed.push(spec.backend);
      return failing.has(spec.backend) ? 'switched off' : null;
    },
  }),
);
