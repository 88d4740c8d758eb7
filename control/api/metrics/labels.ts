/**
 * The labels that name a VIP and a backend on every metric: protocol, address and
 * port apart, so PromQL can group by any of them. Addresses are bare (IPv6 without
 * brackets): no label holds an address and a port together.
 */
import type { VipKey } from '../../state/schema.js';

export type Labels = Record<string, string>;

export const VIP_LABELS = ['protocol', 'address', 'port'];
export const BACKEND_LABELS = [...VIP_LABELS, 'backend'];

export const vipLabels = (vip: VipKey): Labels => ({ protocol: vip.protocol, address: vip.address, port: String(vip.port) });
export const backendLabels = (vip: VipKey, backend: string): Labels => ({ ...vipLabels(vip), backend });
