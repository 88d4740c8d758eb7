import { FORWARD_IPIP } from '../dataplane/codec.js';
import type { ForwardingMode } from './mode.js';

/** A tunnel to the backend (IPIP, IP6IP6 or 4in6): routed, so no MAC; an IPv6 packet does not fit an IPv4 tunnel. */
export const ipip: ForwardingMode = {
  name: 'ipip',
  description: 'IPIP/IP6IP6/4in6 tunnel',
  code: FORWARD_IPIP,
  unresolvedMacReason: null,
  familyConflict: (vipFamily, backendFamily, backendAddress) =>
    vipFamily === 6 && backendFamily === 4 ? `an IPv6 VIP cannot be tunnelled to IPv4 backend ${backendAddress}` : null,
};
