/**
 * What about the balancer's interface an operator should know, for `xlb preflight`
 * and `xlb serve`: a veth whose peer runs no XDP program (XDP_TX frames into a peer
 * with only GRO on can stall until the next ordinary packet wakes it), and
 * VLAN offload (a NIC or veth that strips tags before XDP makes tagged frames look
 * untagged, so the balancer treats them as untagged traffic).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ifNameToIndex, inNetns, xdpQuery } from '@xlb/native';
import { xdpModeSchema } from '../dataplane/xdp-mode.js';

const execFileAsync = promisify(execFile);

interface LinkDetails {
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
}

const hasXdp = (ifindex: number) => xdpModeSchema.options.some((mode) => xdpQuery(ifindex, mode) !== 0);

/** A veth's peer: `warn` unless it runs an XDP program (or the interface is no veth); `text` says what was found. */
export function vethPeer(iface: string): Promise<{ warn: boolean; text: string }> {
  return findVethPeer(iface).catch((error: Error) => ({ warn: true, text: `${iface}: could not check for a veth peer: ${error.message}` }));
}

async function findVethPeer(iface: string): Promise<{ warn: boolean; text: string }> {
  const [details] = JSON.parse((await execFileAsync('ip', ['-j', '-d', 'link', 'show', 'dev', iface])).stdout) as LinkDetails[];
  if (details?.linkinfo?.info_kind !== 'veth') return { warn: false, text: `${iface} is not a veth` };
  const advice =
    'XDP_TX frames into it can stall until the next ordinary packet; attach an XDP program (one that passes everything will do) to the peer';
  const verdict = (peer: string, xdp: boolean) =>
    xdp
      ? { warn: false, text: `${iface} is a veth whose peer ${peer} runs XDP` }
      : { warn: true, text: `${iface} is a veth whose peer ${peer} has no XDP program: ${advice}` };
  if (details.link_netnsid === undefined) {
    if (!details.link)
      return { warn: true, text: `${iface} is a veth whose peer cannot be found; make sure it runs an XDP program: ${advice}` };
    return verdict(details.link, hasXdp(ifNameToIndex(details.link)));
  }
  const ids = JSON.parse((await execFileAsync('ip', ['-j', 'netns', 'list-id'])).stdout || '[]') as { nsid: number; name?: string }[];
  const ns = ids.find((entry) => entry.nsid === details.link_netnsid)?.name;
  const index = details.link_index;
  if (!ns || index === undefined) {
    return {
      warn: true,
      text:
        `${iface} is a veth whose peer (ifindex ${index}) is in a namespace with no name under /run/netns ` +
        `(nsid ${details.link_netnsid}), so whether it runs XDP is unknown: ${advice}`,
    };
  }
  return verdict(
    `(ifindex ${index} in namespace ${ns})`,
    inNetns(`/run/netns/${ns}`, () => hasXdp(index)),
  );
}

/** `ethtool -k` rx-/tx-vlan-offload, e.g. { rx: 'on', tx: 'off [fixed]' }; null when ethtool cannot tell. */
export async function vlanOffload(iface: string): Promise<{ rx: string; tx: string } | null> {
  const text = await execFileAsync('ethtool', ['-k', iface]).then(
    (r) => r.stdout,
    () => '',
  );
  const rx = /^rx-vlan-offload: (.*)$/m.exec(text)?.[1];
  const tx = /^tx-vlan-offload: (.*)$/m.exec(text)?.[1];
  return rx && tx ? { rx, tx } : null;
}

export function vlanOffloadText(iface: string, offload: { rx: string; tx: string } | null): string {
  if (!offload) return `${iface}: VLAN offload state unknown (ethtool -k shows none)`;
  const text = `${iface}: rx-vlan-offload ${offload.rx}, tx-vlan-offload ${offload.tx}`;
  if (!offload.rx.startsWith('on')) return text;
  return (
    `${text}: VLAN tags can be stripped before XDP (by the NIC, or for a veth by its peer's tx-vlan-offload), ` +
    `so tagged frames look untagged to the balancer; ethtool -K ${iface} rxvlan off (on a veth's peer: txvlan off) keeps them`
  );
}

/** The warnings `xlb serve` shows in /v1/status and logs once at start. */
export async function interfaceWarnings(iface: string): Promise<string[]> {
  const warnings: string[] = [];
  const peer = await vethPeer(iface);
  if (peer.warn) warnings.push(peer.text);
  const offload = await vlanOffload(iface);
  if (offload?.rx.startsWith('on')) warnings.push(vlanOffloadText(iface, offload));
  return warnings;
}
