/** Stored records (as the state file holds them) with the schema's defaults, for tests that plan. */
import type { StoredBackend, StoredVip } from '../../control/state/schema.js';

export const storedBackend = (id: number, address: string, extra: Partial<StoredBackend> = {}): StoredBackend => ({
  address,
  id,
  weight: 1,
  state: 'active',
  ...extra,
});

export const storedVip = (id: number, address: string, backends: StoredBackend[], extra: Partial<StoredVip> = {}): StoredVip => ({
  protocol: 'tcp',
  address,
  port: 80,
  id,
  forwarding: 'ipip',
  affinity: 'flow',
  conntrack: true,
  panicThreshold: 0.5,
  healthCheck: { type: 'none' },
  backends,
  ...extra,
});
