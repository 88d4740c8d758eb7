/**
 * The OpenAPI document's examples: one realistic value per body and response, typed
 * by the schemas they illustrate (test/openapi.test.ts also checks each against its
 * schema in the document).
 */
import { pathReason } from '../checks/check-type.js';
import type { StatsView, StatusView, VipView } from '../controller/views.js';
import type { BackendSpec, VipSpec } from '../state/schema.js';

export const vipBodyExample = {
  forwarding: 'dsr',
  healthCheck: { type: 'http', port: 8080, path: '/healthz' },
} satisfies Partial<VipSpec>;

export const backendBodyExample = { weight: 3, state: 'active' } satisfies BackendSpec;

/** A failure as the daemon words it, naming the path the probe took to `backend` (checks/check-type.ts). */
const failedThroughDsr = (backend: string, reason: string) => pathReason({ via: 'vip', forwarding: 'dsr', backend }, reason);

export const vipExample: VipView = {
  protocol: 'tcp',
  address: '203.0.113.10',
  port: 80,
  forwarding: 'dsr',
  affinity: 'flow',
  conntrack: true,
  panicThreshold: 0.5,
  healthCheck: { type: 'http', port: 8080, via: 'vip', path: '/healthz' },
  panic: false,
  ringBackends: 2,
  backends: [
    {
      address: '10.0.0.11',
      weight: 3,
      state: 'active',
      health: 'up',
      healthReason: null,
      via: 'vip',
      lastCheckAt: '2026-12-02T21:40:01.250Z',
      lastCheckMs: 1.7,
      lastFailureAt: null,
      lastFailureReason: null,
      inRing: true,
      slots: 49153,
      reason: null,
      mac: '52:54:00:12:34:56',
    },
    {
      address: '10.0.0.12',
      weight: 1,
      state: 'active',
      health: 'up',
      healthReason: null,
      via: 'vip',
      lastCheckAt: '2026-12-02T21:40:01.310Z',
      lastCheckMs: 2.1,
      lastFailureAt: '2026-12-02T21:31:12.004Z',
      lastFailureReason: failedThroughDsr('10.0.0.12', 'no answer in 1000 ms'),
      inRing: true,
      slots: 16384,
      reason: null,
      mac: '52:54:00:ab:cd:ef',
    },
    {
      address: '10.0.0.13',
      weight: 1,
      state: 'active',
      health: 'down',
      healthReason: failedThroughDsr('10.0.0.13', 'http status 503, expected 200'),
      via: 'vip',
      lastCheckAt: '2026-12-02T21:40:01.290Z',
      lastCheckMs: 3.4,
      lastFailureAt: '2026-12-02T21:40:01.290Z',
      lastFailureReason: failedThroughDsr('10.0.0.13', 'http status 503, expected 200'),
      inRing: false,
      slots: 0,
      reason: 'health check failing',
      mac: '52:54:00:65:43:21',
    },
  ],
};

export const vipListExample = { vips: [vipExample] };

export const statusExample: StatusView = {
  version: '0.1.0',
  interface: 'eth0',
  xdpMode: 'native',
  uptimeSeconds: 86400,
  attached: true,
  attachReason: null,
  ready: true,
  warnings: [],
  conflicts: [],
  errors: [],
  counts: { vips: 1, backends: 3, backendsInRing: 2, backendsHealthy: 2 },
};

export const statsExample: StatsView = {
  at: '2026-12-02T21:40:02.000Z',
  window: { start: '2026-12-02T21:40:01.000Z', end: '2026-12-02T21:40:02.000Z' },
  vips: [
    {
      protocol: 'tcp',
      address: '203.0.113.10',
      port: 80,
      packets: 1843211,
      bytes: 1320443108,
      packetsPerSecond: 630,
      bytesPerSecond: 451820,
      flowHits: 1830002,
      flowMisses: 13209,
      flows: 13209,
      backends: [
        { address: '10.0.0.11', packets: 1382408, bytes: 990332331, packetsPerSecond: 472, bytesPerSecond: 338865, flows: 9907 },
        { address: '10.0.0.12', packets: 460803, bytes: 330110777, packetsPerSecond: 158, bytesPerSecond: 112955, flows: 3302 },
      ],
    },
  ],
  outcomes: {
    tx_dsr: { packets: 1843211, bytes: 1320443108 },
    pass_not_vip: { packets: 52077, bytes: 6210384 },
    drop_no_backend: { packets: 0, bytes: 0 },
  },
  flowTable: {
    slots: 1048576,
    flows: 13209,
    states: { new: 212, established: 12861, closing: 136 },
    evictions: { new: 8804, established: 0, closing: 3117 },
    unrecorded: 0,
  },
  flood: { active: false, since: null, threshold: 125000, peakPerSecond: null, newFlowsPerSecond: [7, 5] },
};
