import { FORWARD_DSR } from '../dataplane/codec.js';
import type { ForwardingMode } from './mode.js';

/** Direct server return: the frame goes to the backend's MAC unchanged, so both share a segment and a family. */
export const dsr: ForwardingMode = {
  name: 'dsr',
  description: 'MAC rewrite',
  code: FORWARD_DSR,
  unresolvedMacReason: 'MAC address not resolved',
  familyConflict: (vipFamily, backendFamily, backendAddress) =>
    vipFamily === backendFamily
      ? null
      : `dsr needs backends of the VIP's family: IPv${vipFamily} VIP, IPv${backendFamily} backend ${backendAddress}`,
};
