/** Why a probe is not sent yet: the LB has no source to bind for it, or its path through the VIP is not in place. */
import type { ProbeHold } from '../health/checker.js';
import { familyOf } from '../net/address.js';
import type { VipPlan } from '../reconciler/plan.js';
import type { ControllerOptions } from './options.js';
import { viaVipHolds } from './targets.js';

/** `options` is read at each probe: the daemon replaces its probeOrigin when the LB's sources change. */
export function probeHolds(options: Pick<ControllerOptions, 'host' | 'probeOrigin'>, plans: () => ReadonlyMap<number, VipPlan>): ProbeHold {
  const viaVip = viaVipHolds(plans, () => options.host?.current);
  return (key, spec) => {
    const held = spec.via === 'vip' ? options.probeOrigin?.held : undefined;
    return (familyOf(spec.address) === 4 ? held?.v4 : held?.v6) ?? viaVip(key, spec);
  };
}
