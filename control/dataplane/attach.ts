/**
 * XDP programs on interfaces: attach in one step, name what is there, detach only our
 * own; and the probe program on xlb's tc egress filter beside it.
 */
import { BpfProgram, ifNameToIndex, tcAttach, tcDetach, tcQuery, xdpAttach, xdpDetach, xdpQuery, type XdpMode } from '@xlb/native';
import { PROGRAMS } from './codec.js';

/** Attaches a program to an interface, replacing the current one in one step. */
export function attachProgram(ifname: string, program: BpfProgram, mode: XdpMode): void {
  const ifindex = ifNameToIndex(ifname);
  const currentId = xdpQuery(ifindex, mode);
  if (!currentId) {
    xdpAttach(ifindex, program, { mode });
    return;
  }
  const current = BpfProgram.fromId(currentId);
  try {
    xdpAttach(ifindex, program, { mode, replace: current });
  } finally {
    current.close();
  }
}

/** The name of the XDP program attached to an interface, or null. */
export function attachedProgramName(ifname: string, mode: XdpMode): string | null {
  const id = xdpQuery(ifNameToIndex(ifname), mode);
  if (!id) return null;
  const program = BpfProgram.fromId(id);
  try {
    return program.info.name;
  } finally {
    program.close();
  }
}

/**
 * Detaches `expected` from an interface; refuses, naming it, when another program is
 * attached. Returns false when nothing was.
 */
export function detachOwnProgram(ifname: string, mode: XdpMode, expected: string): boolean {
  const current = attachedProgramName(ifname, mode);
  if (current === null) return false;
  if (current !== expected) throw new Error(`${ifname} runs XDP program ${current}, not ${expected}; leaving it`);
  detachProgram(ifname, mode);
  return true;
}

export function detachProgram(ifname: string, mode: XdpMode): void {
  xdpDetach(ifNameToIndex(ifname), mode);
}

/** Attaches the probe program as xlb's tc egress filter, replacing a previous daemon's in one step. */
export function attachProbeProgram(ifname: string, program: BpfProgram): void {
  tcAttach(ifNameToIndex(ifname), program);
}

/** Removes xlb's tc egress filter when it runs the probe program; false when there was none. */
export function detachProbeProgram(ifname: string): boolean {
  const ifindex = ifNameToIndex(ifname);
  const id = tcQuery(ifindex);
  if (!id) return false;
  const program = BpfProgram.fromId(id);
  try {
    const name = program.info.name;
    if (name !== PROGRAMS.probe) throw new Error(`${ifname} runs tc program ${name} at xlb's handle, not ${PROGRAMS.probe}; leaving it`);
  } finally {
    program.close();
  }
  return tcDetach(ifindex);
}
