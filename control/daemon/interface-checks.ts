/**
 * What about the balancer's interface an operator should know, for `xlb preflight`
 * and `xlb serve`: a veth whose peer runs no XDP program (XDP_TX frames into a peer
 * with only GRO on were seen to stall until the next ordinary packet woke it), and
 * VLAN offload (a NIC or veth that strips tags before XDP makes tagged frames look
 * untagged, so the balancer treats them as untagged traffic).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ifNameToIndex, inNetns, xdpQuery } from '@xlb/native';

const execFileAsync = promisify(execFile);

interface LinkDetails {
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
}

const hasXdp = (ifindex: number) => xdpQuery(ifindex, 'native') !== 0 || xdpQuery(ifindex, 'generic') !== 0;

/**
 * For a veth: null when its peer runs an XDP program, else a warning naming the peer
 * (or saying its namespace cannot be found). Null for anything but a veth.
 */
export async function vethPeerWarning(iface: string): Promise<string | null> {
  const [details] = JSON.parse((await execFileAsync('ip', ['-j', '-d', 'link', 'show', 'dev', iface])).stdout) as LinkDetails[];
  if (details?.linkinfo?.info_kind !== 'veth') return null;
  const advice = 'XDP_TX frames into it can stall until the next ordinary packet; attach an XDP program (one that passes everything will do) to the peer';
  if (details.link_netnsid === undefined) {
    if (!details.link) return `${iface} is a veth whose peer cannot be found; make sure the peer runs an XDP program (${advice})`;
    return hasXdp(ifNameToIndex(details.link)) ? null : `${iface} is a veth whose peer ${details.link} has no XDP program: ${advice}`;
  }
  const ids = JSON.parse((await execFileAsync('ip', ['-j', 'netns', 'list-id'])).stdout || '[]') as { nsid: number; name?: string }[];
  const ns = ids.find((entry) => entry.nsid === details.link_netnsid)?.name;
  const peer = `ifindex ${details.link_index}`;
  if (!ns || details.link_index === undefined) {
    return `${iface} is a veth whose peer (${peer}) is in a namespace with no name under /run/netns (nsid ${details.link_netnsid}), so whether it runs XDP is unknown: ${advice}`;
  }
  return inNetns(`/run/netns/${ns}`, () => hasXdp(details.link_index!)) ? null : `${iface} is a veth whose peer (${peer} in namespace ${ns}) has no XDP program: ${advice}`;
}

/** `ethtool -k` rx-/tx-vlan-offload, e.g. { rx: 'on', tx: 'off [fixed]' }; null when ethtool cannot tell. */
export async function vlanOffload(iface: string): Promise<{ rx: string; tx: string } | null> {
  const text = await execFileAsync('ethtool', ['-k', iface]).then((r) => r.stdout, () => '');
  const rx = /^rx-vlan-offload: (.*)$/m.exec(text)?.[1];
  const tx = /^tx-vlan-offload: (.*)$/m.exec(text)?.[1];
  return rx && tx ? { rx, tx } : null;
}

export function vlanOffloadText(iface: string, offload: { rx: string; tx: string } | null): string {
  if (!offload) return `${iface}: VLAN offload state unknown (ethtool -k shows none)`;
  const text = `${iface}: rx-vlan-offload ${offload.rx}, tx-vlan-offload ${offload.tx}`;
  return offload.rx.startsWith('on') ? `${text}: VLAN tags are stripped before XDP, so tagged frames look untagged to the balancer (ethtool -K ${iface} rxvlan off to see them)` : text;
}

/** The warnings `xlb serve` shows in /v1/status and logs once at start. */
export async function interfaceWarnings(iface: string): Promise<string[]> {
  const warnings: string[] = [];
  const peer = await vethPeerWarning(iface).catch((error: Error) => `${iface}: could not check for a veth peer: ${error.message}`);
  if (peer) warnings.push(peer);
  const offload = await vlanOffload(iface);
  if (offload?.rx.startsWith('on')) warnings.push(vlanOffloadText(iface, offload));
  return warnings;
}
