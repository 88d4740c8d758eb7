/**
 * The egress filter that runs before xlb_probe on the XDP interface, as the daemon's link
 * watch last found it (daemon/egress-order.ts), for via-vip probe failures to name. One
 * per process: a daemon has one XDP interface.
 */
let ahead: string | null = null;

/** "an egress filter (pref 1, u32) runs before xlb_probe on eth0: probes may not reach it; …", or null when xlb's runs first. */
export function egressFilterAhead(): string | null {
  return ahead;
}

export function setEgressFilterAhead(text: string | null): void {
  ahead = text;
}
