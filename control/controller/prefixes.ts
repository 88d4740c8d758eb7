/** The VIP prefixes worth announcing over BGP. */
import type { VipPlan } from '../reconciler/plan.js';

/** Each VIP address (as /32 or /128) with at least one healthy backend in its ring, once. */
export function announceablePrefixes(plans: Iterable<VipPlan>): string[] {
  const prefixes = new Set<string>();
  for (const { vip, backends } of plans) {
    if (backends.some((b) => b.inRing && b.health === 'up')) prefixes.add(`${vip.address}/${vip.address.includes(':') ? 128 : 32}`);
  }
  return [...prefixes];
}
